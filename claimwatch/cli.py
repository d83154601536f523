"""The ``claimwatch`` command line. Thin: every command calls library code.

Errors from the library become one-line ``click.ClickException`` messages
(exit 1), never tracebacks.
"""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path
from typing import Any

import click

from claimwatch.cli_common import (
    DB_OPTION_HELP,
    parse_settings,
    user_errors,
    warn_if_new_database,
)


def _configure_logging(verbose: int) -> None:
    level = logging.WARNING if verbose == 0 else logging.INFO if verbose == 1 else logging.DEBUG
    logging.basicConfig(
        level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr
    )
    for handler in logging.getLogger().handlers:
        handler.setLevel(level)  # Scrapy sets its own loggers to DEBUG: filter at the handler
    if verbose < 2:
        for noisy in ("scrapy", "twisted", "trafilatura", "htmldate", "courlan", "filelock"):
            logging.getLogger(noisy).setLevel(max(level, logging.WARNING))


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("-v", "--verbose", count=True, help="More logging (-v info, -vv debug).")
@click.version_option(package_name="claimwatch")
def main(verbose: int) -> None:
    """claimwatch: watch news coverage of a topic, match it to known claims, flag what is new.

    \b
    Example:
      claimwatch crawl config/topics/demo.yaml
      claimwatch digest --since 24h
    """
    _configure_logging(verbose)


@main.command()
@click.argument("topic_file", type=click.Path(path_type=Path))
@click.option("--source", "sources", multiple=True, metavar="NAME",
              help="Crawl only this source (repeatable).")
@click.option("--db", "db_url", envvar="CLAIMWATCH_DB", help=DB_OPTION_HELP)
@click.option("--set", "overrides", multiple=True, metavar="NAME=VALUE",
              help="Override a Scrapy/claimwatch setting, e.g. --set DOWNLOAD_DELAY=2.")
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
          overrides: tuple[str, ...], trigger: str, notify: bool, revisit: bool,
          progress: bool) -> None:
    """Crawl a topic's sources once, now, and print a summary.

    \b
    Example:
      claimwatch crawl config/topics/demo.yaml
      claimwatch crawl config/topics/twitter-child-safety.yaml --source nbc-tech
      claimwatch crawl config/topics/demo.yaml --revisit
    """
    from crawler.runner import run_crawl

    settings: dict[str, str] = {"LOG_LEVEL": logging.getLevelName(logging.getLogger().level)}
    settings.update(parse_settings(overrides))
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
        from claimwatch.cli_search import notify_channels

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


@main.command()
@click.option("--topic", help="Only this topic (its name in the topic file).")
@click.option("--since", default="24h", show_default=True,
              help="Articles fetched since: a duration (24h, 7d) or an ISO date.")
@click.option("--format", "fmt", type=click.Choice(["text", "md", "html", "json", "atom"]),
              default="text", show_default=True)
@click.option("--all", "include_reviewed", is_flag=True,
              help="Include articles already marked reviewed or dismissed.")
@click.option("--db", "db_url", envvar="CLAIMWATCH_DB", help=DB_OPTION_HELP)
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path),
              help="Write to this file instead of standard output.")
@click.option("--email", is_flag=True,
              help="Email it (HTML with a text part) over SMTP, set by CLAIMWATCH_SMTP_HOST, "
                   "_PORT, _STARTTLS, _USER, _PASSWORD, _FROM, _TO; a digest that cannot be "
                   "sent is kept and sent on the next run.")
@user_errors
def digest(topic: str | None, since: str, fmt: str, include_reviewed: bool, db_url: str | None,
           output: Path | None, email: bool) -> None:
    """Print the flagged articles: new reports, duplicates, conflicts, new-claim candidates.

    \b
    Example:
      claimwatch digest --since 24h
      claimwatch digest --topic demo-twitter-child-safety --format json
      CLAIMWATCH_SMTP_HOST=smtp.example.org ... claimwatch digest --email
    """
    from claimwatch.digest import build_digest, parse_since
    from claimwatch.render import render
    from storage.db import open_db

    warn_if_new_database(db_url)
    engine, sessions = open_db(db_url)
    try:
        with sessions() as session:
            data = build_digest(session, topic=topic, since=parse_since(since),
                                include_reviewed=include_reviewed)
    finally:
        engine.dispose()
    if os.environ.get("CLAIMWATCH_BASE_URL") and fmt != "json":
        data["review_base"] = os.environ["CLAIMWATCH_BASE_URL"]  # items link to the page
    if email:
        from claimwatch.cli_review import email_digest

        click.echo(email_digest(data))
        return
    text = render(data, fmt)
    if output:
        output.write_text(text, encoding="utf-8")
    else:
        click.echo(text)


from claimwatch.cli_db import db as _db_group  # noqa: E402

main.add_command(_db_group)

from claimwatch.cli_review import COMMANDS as _review_commands  # noqa: E402

for _command in _review_commands:
    main.add_command(_command)

from claimwatch.cli_search import COMMANDS as _search_commands  # noqa: E402
from claimwatch.cli_users import COMMANDS as _user_commands  # noqa: E402

for _command in (*_search_commands, *_user_commands):
    main.add_command(_command)

from claimwatch.explain import COMMANDS as _explain_commands  # noqa: E402
from claimwatch.rematch import COMMANDS as _rematch_commands  # noqa: E402

for _command in (*_rematch_commands, *_explain_commands):
    main.add_command(_command)

from claimwatch.cli_daemon import daemon as _daemon_command  # noqa: E402

main.add_command(_daemon_command)

from claimwatch.cli_worker import enqueue as _enqueue_command  # noqa: E402
from claimwatch.cli_worker import worker as _worker_command  # noqa: E402

main.add_command(_worker_command)
main.add_command(_enqueue_command)


if __name__ == "__main__":  # pragma: no cover
    main()
