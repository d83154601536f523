"""CLI commands for reviewing: ``review``, ``claims`` and ``serve``.

Registered on the main group by :mod:`claimwatch.cli`. Thin: the work is in
:mod:`claimwatch.review` and :mod:`claimwatch.web`.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import click

from claimwatch.cli.common import (
    DB_ID,
    TOKEN_ENV,
    db_option,
    store,
    user_errors,
    warn_if_new_database,
)

logger = logging.getLogger(__name__)




# --------------------------------------------------------------------------- review


@click.group()
def review() -> None:
    """Mark articles reviewed or dismissed; confirm or reject claim matches.

    \b
    Example:
      claimwatch review mark 12 reviewed --note "checked with the desk"
      claimwatch review match 12 tns-staff-25-of-1600 reject
    """


@review.command("mark")
@click.argument("article_ids", metavar="ID...", nargs=-1, required=True, type=DB_ID)
@click.argument("status", type=click.Choice(["reviewed", "dismissed", "open"]))
@click.option("--note", help="A note kept with the article (replaces an earlier note).")
@click.option("--with-copies", is_flag=True, help="Give its stored copies the same status.")
@db_option
@user_errors
def review_mark(article_ids: tuple[int, ...], status: str, note: str | None, with_copies: bool,
                db_url: str | None) -> None:
    """Mark articles reviewed or dismissed (or open again): they leave the digest.

    \b
    Example:
      claimwatch review mark 12 reviewed
      claimwatch review mark 12 13 14 dismissed --note "off topic"
    """
    from claimwatch.accounts import cli_actor, record
    from claimwatch.review import mark_article

    with store(db_url) as sessions, sessions.begin() as session:
        for article_id in article_ids:
            mark_article(session, article_id, status, note, with_copies=with_copies)
            record(session, article_id, cli_actor(), f"marked {status}", note=note,
                   with_copies=with_copies or None)
    ids = ", ".join(f"#{i}" for i in article_ids)
    click.echo(f"{ids} marked {status}" + (" with their copies" if with_copies else ""))


@review.command("match")
@click.argument("article_id", type=DB_ID)
@click.argument("claim_id")
@click.argument("decision", type=click.Choice(["confirm", "reject", "reopen"]))
@db_option
@user_errors
def review_match_cmd(article_id: int, claim_id: str, decision: str, db_url: str | None) -> None:
    """Confirm or reject the match of an article to a known claim.

    A rejected match leaves the digest and no longer counts as a conflict.

    \b
    Example:
      claimwatch review match 12 tns-staff-25-of-1600 confirm
    """
    from claimwatch.accounts import cli_actor, record
    from claimwatch.review import review_match

    with store(db_url) as sessions, sessions.begin() as session:
        review = review_match(session, article_id, claim_id, decision).review
        record(session, article_id, cli_actor(), f"match {review}", claim_id=claim_id)
    click.echo(f"match of #{article_id} to {claim_id}: {review}")


# --------------------------------------------------------------------------- claims


@click.group()
def claims() -> None:
    """The claims table: coverage per claim, and promoting new claims.

    \b
    Example:
      claimwatch claims list --topic demo-twitter-child-safety
      claimwatch claims promote 41 --id tns-staff-20-of-1500 --topic-file config/topics/demo.yaml
    """


def _find_topic_file(topic_name: str, search: Sequence[Path]) -> Path:
    from config.loader import ConfigError, load_topic

    found = []
    for directory in search:
        for path in sorted(directory.glob("*.yaml")) + sorted(directory.glob("*.yml")):
            try:
                if load_topic(path).name == topic_name:
                    found.append(path)
            except ConfigError:
                continue
    if len(found) == 1:
        return found[0]
    where = ", ".join(str(d) for d in search)
    if not found:
        raise click.ClickException(
            f"no topic file for topic {topic_name!r} in {where}: pass --topic-file PATH"
        )
    raise click.ClickException(
        f"several topic files name topic {topic_name!r} ({', '.join(map(str, found))}): "
        "pass --topic-file PATH"
    )


@claims.command("promote")
@click.argument("candidate_id", type=DB_ID)
@click.option("--id", "new_id", required=True, metavar="NEW_ID",
              help="The new claim's id (lower case, digits, '-', e.g. tns-staff-20-of-1500).")
@click.option("--text", help="The claim's wording (default: the candidate sentence).")
@click.option("--topic-file", type=click.Path(dir_okay=False, path_type=Path),
              help="The topic file whose claims table gets the claim (default: the one in "
                   "config/topics/ that names the candidate's topic).")
@db_option
@user_errors
def claims_promote(candidate_id: int, new_id: str, text: str | None, topic_file: Path | None,
                   db_url: str | None) -> None:
    """Promote a new-claim candidate sentence to a known claim of its topic.

    The claim is appended to the topic's claims table (CSV or YAML, kept as it is
    otherwise), and the stored articles are matched against it at once (the next
    crawls match it too). Candidate ids are in
    `claimwatch digest --format json` and on the review page.

    \b
    Example:
      claimwatch claims promote 41 --id tns-staff-20-of-1500
      claimwatch claims promote 41 --id council-disbanded --topic-file config/topics/demo.yaml
    """
    from claimwatch.review import promote_candidate
    from config.loader import load_topic
    from storage.models import ClaimCandidate

    with store(db_url) as sessions:
        with sessions() as session:
            candidate = session.get(ClaimCandidate, candidate_id)
            if candidate is None:
                raise click.ClickException(f"no claim candidate with id {candidate_id}")
            topic_name = candidate.article.topic
        path = topic_file or _find_topic_file(topic_name, [Path("config/topics")])
        topic = load_topic(path)
        with sessions.begin() as session:
            claim = promote_candidate(session, candidate_id, new_id, topic, text=text)
            from claimwatch.accounts import cli_actor, record

            candidate = session.get(ClaimCandidate, candidate_id)
            if candidate is not None:
                record(session, candidate.article_id, cli_actor(), "promoted a candidate",
                       claim_id=claim.id, text=claim.text)
    click.echo(f"claim {claim.id} added to {topic.claims_path}: {claim.text}")
    from claimwatch.rematch import rematch_after_promotion

    with store(db_url) as sessions:
        for line in rematch_after_promotion(topic.path, sessions).lines()[1:]:
            click.echo(line)


@claims.command("list")
@click.option("--topic", help="Only this topic.")
@db_option
@user_errors
def claims_list(topic: str | None, db_url: str | None) -> None:
    """Each known claim with the articles and outlets repeating it, first and last seen.

    \b
    Example:
      claimwatch claims list --topic demo-twitter-child-safety
    """
    from claimwatch.review import claim_coverage

    with store(db_url) as sessions, sessions() as session:
        rows = claim_coverage(session, topic)
    if not rows:
        click.echo("no claims stored yet: crawl a topic first")
        return
    width = min(max(len(r.claim_id) for r in rows), 48)
    click.echo(f"{'claim':<{width}}  {'articles':>8}  {'outlets':>7}  {'conflicts':>9}  "
               f"{'first seen':<10}  {'last seen':<10}")
    for r in rows:
        first = r.first_seen.date().isoformat() if r.first_seen else "-"
        last = r.last_seen.date().isoformat() if r.last_seen else "-"
        click.echo(f"{r.claim_id:<{width}}  {r.articles:>8}  {r.outlets:>7}  {r.conflicts:>9}  "
                   f"{first:<10}  {last:<10}")


# --------------------------------------------------------------------------- serve


class SubprocessCrawls:
    """"Crawl now" for ``claimwatch serve``: one ``python -m crawler.run`` per request.

    The worker takes the source's lease in the database, so a crawl already running
    (from the daemon, a terminal or an earlier click) is refused, not doubled.
    """

    def __init__(self, topics: Mapping[str, Any], db_url: str, sessions: Any) -> None:
        self.topics = topics
        self.db_url = db_url
        self.sessions = sessions
        self.children: list[subprocess.Popen[bytes]] = []
        self.running: dict[tuple[str, str], subprocess.Popen[bytes]] = {}
        self._lock = threading.Lock()

    def __call__(self, topic_name: str, source_name: str) -> str:
        from claimwatch.web import CrawlRefused
        from storage import leases

        lease = leases.current(self.sessions, topic_name, source_name)
        if leases.is_live(lease):
            assert lease is not None
            raise CrawlRefused(f"{source_name} is being crawled already by {lease.describe()}")
        with self._lock:
            earlier = self.running.get((topic_name, source_name))
            if earlier is not None and earlier.poll() is None:
                raise CrawlRefused(f"the crawl of {source_name} started from this page "
                                   f"(process {earlier.pid}) is still running")
        topic = self.topics[topic_name]
        command = [sys.executable, "-m", "crawler.run", str(topic.path), "--source", source_name,
                   "--db", self.db_url, "--trigger", "manual", "--parent-pid", str(os.getpid())]
        with self._lock:
            self.reap()
            child = subprocess.Popen(command, stdin=subprocess.DEVNULL,
                                     stdout=subprocess.DEVNULL)
            self.children.append(child)
            self.running[(topic_name, source_name)] = child
        logger.info("crawl now: %s/%s in process %s", topic_name, source_name, child.pid)
        return f"started in process {child.pid}; its run appears below when it starts"

    def reap(self) -> None:
        self.children = [c for c in self.children if c.poll() is None]

    def close(self, timeout: float = 30) -> None:
        for child in self.children:
            try:
                child.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait()
        self.children = []


class _Stop(Exception):
    pass


def _raise_stop(signum: int, frame: Any) -> None:
    raise _Stop()


@click.command()
@click.argument("topic_files", metavar="TOPIC_FILE...", nargs=-1,
                type=click.Path(dir_okay=False, path_type=Path))
@click.option("--listen", default="127.0.0.1:8750", show_default=True, metavar="HOST:PORT",
              help="Address to serve on. Any non-loopback address needs --token.")
@click.option("--token", envvar=TOKEN_ENV, metavar="TOKEN",
              help=f"Access token (at least 16 characters; or ${TOKEN_ENV}): open the page "
                   "once as http://HOST:PORT/?token=TOKEN, or send Authorization: Bearer TOKEN.")
@db_option
@user_errors
def serve(topic_files: tuple[Path, ...], listen: str, token: str | None,
          db_url: str | None) -> None:
    """Serve the review page alone (the daemon serves it too), until Ctrl-C or SIGTERM.

    Give the topic files to promote claims into their claims tables and to crawl
    their sources from the page.

    \b
    Example:
      claimwatch serve config/topics/demo.yaml
      claimwatch serve --listen 0.0.0.0:8750 --token "$(cat ~/.claimwatch-token)" topic.yaml
    """
    from claimwatch.web import WebConfigError, check_binding, make_app, make_server, parse_listen
    from config.loader import load_topic
    from storage.db import default_db_url, describe, open_db

    try:
        host, port = parse_listen(listen)
        check_binding(host, token)
    except WebConfigError as exc:
        raise click.ClickException(str(exc)) from exc
    topics = {}
    for path in topic_files:
        topic = load_topic(path)
        topics[topic.name] = topic
    db_url = db_url or default_db_url()
    warn_if_new_database(db_url)
    engine, sessions = open_db(db_url)
    crawls: SubprocessCrawls | None = None
    unavailable = None
    try:
        import storage.leases  # noqa: F401 - the worker needs leases to crawl safely

        crawls = SubprocessCrawls(topics, db_url, sessions)
    except ImportError:
        unavailable = ("Crawl now needs source leases, which this installation lacks: "
                       "run `claimwatch crawl TOPIC_FILE --source NAME` instead.")
    app = make_app(sessions, topics.values(), token=token, trigger_crawl=crawls,
                   crawl_unavailable=unavailable)
    try:
        server = make_server(host, port, app)
    except OSError as exc:
        engine.dispose()
        raise click.ClickException(f"cannot listen on {listen}: {exc.strerror or exc}") from exc
    shown = f"[{host}]" if ":" in host else host
    click.echo(f"review page at http://{shown}:{server.server_port}/ on {describe(db_url)}"
               + (" (token required)" if token else "") + "; Ctrl-C stops it")
    previous = signal.signal(signal.SIGTERM, _raise_stop)
    try:
        server.serve_forever(poll_interval=0.5)
    except (KeyboardInterrupt, _Stop):
        click.echo("stopping")
    finally:
        signal.signal(signal.SIGTERM, previous)
        server.server_close()
        if crawls is not None:
            crawls.close()
        engine.dispose()


COMMANDS = (review, claims, serve)
