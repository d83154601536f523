"""``claimwatch search`` and ``claimwatch export``: find and take out what is stored."""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path
from typing import Any

import click

from claimwatch.cli.common import DB_OPTION_HELP, user_errors


def _date(value: str | None, name: str) -> Any:
    if value is None:
        return None
    from claimwatch.digest import DigestError, parse_since

    try:
        return parse_since(value)
    except DigestError as exc:
        raise click.BadParameter(f"{value!r} is not a duration like 7d or an ISO date in range",
                                 param_hint=name) from exc


@click.command()
@click.argument("query")
@click.option("--topic", help="Only this topic.")
@click.option("--flag", type=click.Choice(["new_report", "duplicate", "conflict",
                                           "new_claim_candidate", "disputes"]),
              help="Only articles with this flag.")
@click.option("--claim", "claim_id", metavar="CLAIM_ID", help="Only articles linked to this claim.")
@click.option("--outlet", help="Only this outlet (case does not matter).")
@click.option("--language", metavar="CODE", help="Only articles in this language (en, de...).")
@click.option("--since", metavar="WHEN", help="Published (or fetched) since: 7d, 24h or a date.")
@click.option("--until", metavar="WHEN", help="Published (or fetched) until: 7d, 24h or a date.")
@click.option("--review", type=click.Choice(["open", "reviewed", "dismissed"]),
              help="Only articles with this review status.")
@click.option("--limit", type=click.IntRange(1, 500), default=20, show_default=True)
@click.option("--offset", type=click.IntRange(0, 10_000), default=0, show_default=True,
              help="Skip this many results (the next page).")
@click.option("--format", "fmt", type=click.Choice(["text", "json", "csv"]), default="text",
              show_default=True)
@click.option("--db", "db_url", envvar="CLAIMWATCH_DB", help=DB_OPTION_HELP)
@user_errors
def search(query: str, topic: str | None, flag: str | None, claim_id: str | None,
           outlet: str | None, language: str | None, since: str | None, until: str | None,
           review: str | None, limit: int, offset: int, fmt: str, db_url: str | None) -> None:
    """Search stored articles (title, text, outlet), best match first.

    Words are all required and stemmed; "a phrase" must appear as written;
    OR accepts either word; -word excludes.

    \b
    Example:
      claimwatch search '"child sexual abuse material" layoffs'
      claimwatch search 'Musk OR Yaccarino' --topic twitter-child-safety --since 30d
      claimwatch search 'fired -Tesla' --flag conflict --format csv > hits.csv
    """
    from storage.db import open_db
    from storage.search import SearchFilters, plain, search_articles

    filters = SearchFilters(topic=topic, flag=flag, claim=claim_id, outlet=outlet,
                            language=language, since=_date(since, "--since"),
                            until=_date(until, "--until"), review=review)
    engine, sessions = open_db(db_url)
    try:
        with sessions() as session:
            page = search_articles(session, query, filters, limit=limit, offset=offset)
    finally:
        engine.dispose()
    rows = [
        {"id": h.id, "topic": h.topic, "title": h.title, "outlet": h.outlet, "url": h.url,
         "language": h.language, "published": h.published.isoformat() if h.published else None,
         "fetched_at": h.fetched_at.isoformat(), "review": h.review_status,
         "duplicate_of": h.duplicate_of_id, "snippet": plain(h.snippet, "", "")}
        for h in page.hits
    ]
    if fmt == "json":
        click.echo(json.dumps({"query": query, "offset": offset, "next_offset": page.next_offset,
                               "results": rows}, ensure_ascii=False, indent=2))
        return
    if fmt == "csv":
        from claimwatch.digest.export import spreadsheet_safe

        writer = csv.DictWriter(sys.stdout, fieldnames=list(rows[0]) if rows else ["id"],
                                lineterminator="\n")
        writer.writeheader()
        for row in rows:
            writer.writerow({k: spreadsheet_safe(v) for k, v in row.items()})
        return
    if not page.hits:
        click.echo(f"no stored article matches {query!r}")
        return
    for hit in page.hits:
        when = (hit.published or hit.fetched_at).date().isoformat()
        copy = f"  (copy of #{hit.duplicate_of_id})" if hit.duplicate_of_id else ""
        click.echo(f"#{hit.id}  {when}  {hit.outlet or '?'}  {hit.title or hit.url}{copy}")
        click.echo(f"    {hit.url}")
        click.echo(f"    {plain(hit.snippet, '[', ']')}")
    if page.next_offset is not None:
        click.echo(f"more: --offset {page.next_offset}")


@click.command()
@click.option("--topic", help="Only this topic.")
@click.option("--since", metavar="WHEN",
              help="Fetched since: 30d, 24h or an ISO date (default: all).")
@click.option("--status", type=click.Choice(["open", "reviewed", "dismissed"]),
              help="Only articles with this review status (default: all).")
@click.option("--format", "fmt", type=click.Choice(["csv", "jsonl"]), required=True,
              help="csv: one row per claim link; jsonl: one digest entry per article.")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path),
              help="Write to this file instead of standard output.")
@click.option("--db", "db_url", envvar="CLAIMWATCH_DB", help=DB_OPTION_HELP)
@user_errors
def export(topic: str | None, since: str | None, status: str | None, fmt: str,
           output: Path | None, db_url: str | None) -> None:
    """Export stored articles with their flags and claim links (CSV or JSON Lines).

    \b
    Example:
      claimwatch export --topic twitter-child-safety --since 30d --format csv -o links.csv
      claimwatch export --format jsonl > everything.jsonl
    """
    from claimwatch.digest.export import ExportQuery
    from claimwatch.digest.export import export as run_export
    from storage.db import open_db

    query = ExportQuery(topic=topic, since=_date(since, "--since"), status=status)
    engine, sessions = open_db(db_url)
    try:
        with sessions() as session:
            if output is None:
                for chunk in run_export(session, query, fmt):
                    click.echo(chunk, nl=False)
                return
            partial = output.with_name(output.name + ".partial")
            try:
                with partial.open("w", encoding="utf-8", newline="") as handle:
                    for chunk in run_export(session, query, fmt):
                        handle.write(chunk)
            except OSError as exc:
                partial.unlink(missing_ok=True)
                raise click.ClickException(f"cannot write {output}: {exc.strerror}") from exc
            partial.replace(output)  # never a half-written export under the real name
    finally:
        engine.dispose()


def notify_channels(topic_file: Path, db_url: str | None, *, test: bool = False) -> list[str]:
    """Run (or test) one topic's notification channels; one line per channel."""
    from claimwatch.digest.notify import notify_topic, send_test
    from config.loader import load_topic
    from storage.db import open_db

    topic = load_topic(topic_file)
    if not topic.notify:
        return [f"topic {topic.name}: no notify channels in {topic_file}"] if test else []
    if test:
        return [f"{topic.name}: {r.line()}" for r in send_test(topic)]
    engine, sessions = open_db(db_url)
    try:
        return [f"{topic.name}: {r.line()}" for r in notify_topic(sessions, topic)]
    finally:
        engine.dispose()


@click.command()
@click.argument("topic_files", metavar="TOPIC_FILE...", nargs=-1, required=True,
                type=click.Path(path_type=Path))
@click.option("--test", is_flag=True, help="Send a test message to every channel, nothing else.")
@click.option("--db", "db_url", envvar="CLAIMWATCH_DB", help=DB_OPTION_HELP)
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


COMMANDS = (search, export, notify)
