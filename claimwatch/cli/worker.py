"""``claimwatch worker`` and ``claimwatch enqueue``: distributed crawling on Redis."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from claimwatch.cli.common import db_option, settings_option, sources_option, user_errors

redis_option = click.option(
    "--redis", "redis_url", envvar="CLAIMWATCH_REDIS_URL", required=True,
    help="Redis URL, e.g. redis://queue-host:6379/0 (default: $CLAIMWATCH_REDIS_URL).")
prefix_option = click.option(
    "--prefix", envvar="CLAIMWATCH_REDIS_PREFIX", default="claimwatch", show_default=True,
    help="Namespace of the deployment's keys in Redis ($CLAIMWATCH_REDIS_PREFIX).")


@click.command()
@redis_option
@db_option
@prefix_option
@click.option("--max-jobs", type=click.IntRange(min=1),
              help="Jobs worked on at once (default: CLAIMWATCH_WORKER_MAX_JOBS).")
@click.option("--id", "worker_id", help="This worker's name (default: host:pid:random).")
@click.option("--burst", is_flag=True, help="Exit once no job is left, instead of waiting.")
@settings_option("Override a Scrapy/claimwatch setting, e.g. --set CONCURRENT_REQUESTS=32.")
@user_errors
def worker(redis_url: str, db_url: str | None, prefix: str, max_jobs: int | None,
           worker_id: str | None, burst: bool, settings: dict[str, str]) -> None:
    """Crawl the jobs queued in Redis, together with workers on other machines.

    Workers share each crawl's request queue and duplicate filter in Redis and store
    into one database (PostgreSQL when they run on several machines). Topic files must
    be at the same paths as on the machine that queues the crawls. SIGTERM stops the
    worker gracefully; the others take over what it had not started.

    \b
    Example:
      claimwatch worker --redis redis://queue-host:6379/0 \\
          --db postgresql+psycopg://claimwatch@db-host/claimwatch
    """
    from claimwatch.worker import WorkerOptions, run_worker
    from storage.db import default_db_url

    outcomes = run_worker(WorkerOptions(
        redis_url=redis_url, db_url=db_url or default_db_url(), prefix=prefix,
        settings=settings, worker_id=worker_id, max_jobs=max_jobs,
        burst=burst,
    ))
    for outcome in outcomes:
        counts = ", ".join(f"{k} {v}" for k, v in outcome.counts.items() if v) or "no work"
        click.echo(f"{outcome.topic}/{outcome.source} job {outcome.job_id}: {outcome.status} "
                   f"({counts}){': ' + outcome.error if outcome.error else ''}")


@click.command()
@click.argument("topic_file", type=click.Path(path_type=Path))
@sources_option("Queue")
@redis_option
@prefix_option
@click.option("--wait", type=float, metavar="SECONDS",
              help="Wait up to SECONDS for the workers to finish the crawls.")
@user_errors
def enqueue(topic_file: Path, sources: tuple[str, ...], redis_url: str, prefix: str,
            wait: float | None) -> None:
    """Queue a crawl of a topic's sources for the workers, now.

    A source whose previous crawl is still queued or running is not queued twice.

    \b
    Example:
      claimwatch enqueue config/topics/twitter-child-safety.yaml --redis redis://queue-host:6379/0
    """
    from crawler.distributed import enqueue_topic, wait_for_jobs

    results = enqueue_topic(redis_url, topic_file, sources or None, trigger="manual",
                            prefix=prefix)
    for result in results:
        job = result.job
        state = "queued" if result.created else "already queued or running"
        click.echo(f"{job.topic}/{job.source}: {state} as job {job.id}")
    if wait is None:
        return
    try:
        done = wait_for_jobs(redis_url, [r.job.id for r in results], timeout=wait, prefix=prefix)
    except TimeoutError as exc:
        raise click.ClickException(str(exc)) from exc
    failed = False
    for result in results:
        record = done[result.job.id]
        errors = record.get("errors") or []
        failed = failed or bool(errors)
        click.echo(f"{result.job.topic}/{result.job.source}: finished"
                   + (f" with errors: {'; '.join(errors)}" if errors else ""))
    if failed:
        sys.exit(1)


COMMANDS = (worker, enqueue)
