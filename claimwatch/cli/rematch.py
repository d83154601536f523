"""``claimwatch rematch [TOPIC_FILE] [--since 30d]``: stored articles matched again
against the topic's current claims table and query (the work: claimwatch/rematch.py,
pipeline/rematch.py)."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import click

from claimwatch.cli.common import db_option, parse_when, store, user_errors
from claimwatch.rematch import rematch
from config.loader import load_topic


def _topic_paths(topic_file: Path | None) -> Iterable[Path]:
    if topic_file is not None:
        return [topic_file]
    directory = Path("config/topics")
    paths = sorted(directory.glob("*.yaml")) + sorted(directory.glob("*.yml"))
    if not paths:
        raise click.ClickException("no TOPIC_FILE given and no topic files in config/topics")
    return paths


@click.command("rematch")
@click.argument("topic_file", required=False, type=click.Path(path_type=Path))
@click.option("--since", default=None, metavar="DURATION|ISO",
              help="Only articles fetched since (30d, 2w, an ISO date); default: all.")
@click.option("--all", "every", is_flag=True,
              help="Re-match every article, also those already matched against the current "
                   "claims table (e.g. after changing CLAIMWATCH_CLAIM_* thresholds).")
@click.option("--workers", type=click.IntRange(0), default=None,
              help="Worker processes (default: one per CPU; 0: in this process).")
@db_option
@user_errors
def rematch_command(topic_file: Path | None, since: str | None, every: bool,
                    workers: int | None, db_url: str | None) -> None:
    """Match stored articles again against the topic's current claims table and query.

    Review decisions stay with every match that still holds. Off-topic pages kept
    from earlier crawls are checked against the query again: those it matches now
    are stored as articles. Without TOPIC_FILE, every topic file in config/topics.

    \b
    Example:
      claimwatch rematch config/topics/demo.yaml
      claimwatch rematch config/topics/demo.yaml --since 30d
    """
    when = parse_when(since, "--since")
    with store(db_url) as sessions:
        for path in _topic_paths(topic_file):
            summary = rematch(load_topic(path), sessions, since=when, every=every,
                              workers=workers)
            for line in summary.lines():
                click.echo(line)


COMMANDS = (rematch_command,)
