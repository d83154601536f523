"""``claimwatch notify``: the topics' alerts now, or a test message to each channel."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from claimwatch.cli.common import db_option, store, user_errors


def notify_channels(topic_file: Path, db_url: str | None, *, test: bool = False) -> list[str]:
    """Run (or test) one topic's notification channels; one line per channel."""
    from claimwatch.digest.notify import notify_topic, send_test
    from config.loader import load_topic

    topic = load_topic(topic_file)
    if not topic.notify:
        return [f"topic {topic.name}: no notify channels in {topic_file}"] if test else []
    if test:
        return [f"{topic.name}: {r.line()}" for r in send_test(topic)]
    with store(db_url) as sessions:
        return [f"{topic.name}: {r.line()}" for r in notify_topic(sessions, topic)]


@click.command()
@click.argument("topic_files", metavar="TOPIC_FILE...", nargs=-1, required=True,
                type=click.Path(path_type=Path))
@click.option("--test", is_flag=True, help="Send a test message to every channel, nothing else.")
@db_option
@user_errors
def notify(topic_files: tuple[Path, ...], test: bool, db_url: str | None) -> None:
    """Send the topics' alerts now (conflicts, disputes, new reports, source alarms).

    Channels are Apprise URLs in the topic file's `notify` list; a crawl sends
    them on its own. Review links use $CLAIMWATCH_BASE_URL when it is set.

    \b
    Example:
      claimwatch notify --test config/topics/twitter-child-safety.yaml
      CLAIMWATCH_BASE_URL=https://desk.example.org claimwatch notify topic.yaml
    """
    failed = False
    for topic_file in topic_files:
        for line in notify_channels(topic_file, db_url, test=test):
            click.echo(line)
            failed = failed or "FAILED" in line
    if failed:
        sys.exit(1)


COMMANDS = (notify,)
