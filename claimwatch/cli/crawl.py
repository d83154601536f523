"""``claimwatch crawl``: one crawl of a topic's sources, now, with its summary."""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Any

import click

from claimwatch.cli.common import db_option, settings_option, sources_option, user_errors


@click.command()
@click.argument("topic_file", type=click.Path(path_type=Path))
@sources_option("Crawl")
@db_option
@settings_option("Override a Scrapy/claimwatch setting, e.g. --set DOWNLOAD_DELAY=2.")
@click.option("--trigger", type=click.Choice(["manual", "schedule"]), default="manual",
              hidden=True)
@click.option("--notify/--no-notify", default=True, show_default=True,
              help="Send the topic's alerts (its `notify` channels) after the crawl.")
@click.option("--revisit", is_flag=True,
              help="Instead of new articles, fetch the sources' recent articles again (within "
                   "each source's `revisit` window, default 3d) and keep their edits.")
@click.option("--progress/--no-progress", default=True, show_default=True,
              help="Live progress on standard error (redrawn on a terminal, else a line "
                   "per source every few seconds).")
@user_errors
def crawl(topic_file: Path, sources: tuple[str, ...], db_url: str | None,
          settings: dict[str, str], trigger: str, notify: bool, revisit: bool,
          progress: bool) -> None:
    """Crawl a topic's sources once, now, and print a summary.

    \b
    Example:
      claimwatch crawl config/topics/demo.yaml
      claimwatch crawl config/topics/demo.yaml --revisit
      claimwatch crawl config/topics/twitter-child-safety.yaml --source nbc-tech
    """
    from crawler.runner import run_crawl

    settings = {"LOG_LEVEL": logging.getLevelName(logging.getLogger().level), **settings}
    from crawler.progress import ProgressPrinter

    printer = ProgressPrinter(sys.stderr) if progress else None
    try:
        summary = run_crawl(topic_file, sources=sources or None, db_url=db_url,
                            settings=settings, trigger=trigger,
                            progress=printer.update if printer else None, revisit=revisit)
    finally:
        if printer:
            printer.close()
    click.echo(format_summary(summary))
    if notify:
        from claimwatch.cli.notify import notify_channels

        for line in notify_channels(topic_file, db_url):
            click.echo(line)
    if not summary.ok:
        sys.exit(1)


def format_summary(summary: Any) -> str:
    columns = ("fetched", "not_modified", "new", "duplicates", "matched", "conflicts",
               "candidates", "off_topic", "seen", "refused", "skipped", "errors")
    col = {c: max(10, len(c)) for c in columns}
    width = max([len(s.source) for s in summary.sources] + [6])
    lines = [f"topic {summary.topic}",
             f"{'source':<{width}}  " + "  ".join(f"{c:>{col[c]}}" for c in columns) + "  status"]
    for source in summary.sources:
        lines.append(
            f"{source.source:<{width}}  "
            + "  ".join(f"{source.counts.get(c, 0):>{col[c]}}" for c in columns)
            + f"  {source.status}" + (f": {source.error}" if source.error else "")
        )
    if len(summary.sources) > 1:
        lines.append(f"{'total':<{width}}  "
                     + "  ".join(f"{summary.total(c):>{col[c]}}" for c in columns))
    from crawler.runner import SKIP_REASONS

    for source in summary.sources:
        reasons = [f"{int(source.stats[key])} {why}" for key, why in SKIP_REASONS.items()
                   if source.stats.get(key)]
        if reasons:
            lines.append(f"{source.source}: links skipped: {', '.join(reasons)}")
    for source in summary.sources:
        outcomes = [f"{int(v)} {k.rsplit('/', 1)[-1]}" for k, v in sorted(source.stats.items())
                    if k.startswith("claimwatch/revisit/") and k != "claimwatch/revisit/requests"]
        if outcomes:
            lines.append(f"{source.source}: revisits: {', '.join(outcomes)}")
    flagged = summary.total("new")
    lines.append(f"{flagged} new article(s) flagged for review: run `claimwatch digest`.")
    return "\n".join(lines)


COMMANDS = (crawl,)
