"""``claimwatch search`` and ``claimwatch export``: find and take out what is stored."""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path

import click

from claimwatch.cli.common import (
    db_option,
    output_option,
    parse_when,
    store,
    user_errors,
    write_file,
)


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
@db_option
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
    from storage.search import SearchFilters, plain, search_articles

    filters = SearchFilters(topic=topic, flag=flag, claim=claim_id, outlet=outlet,
                            language=language, since=parse_when(since, "--since"),
                            until=parse_when(until, "--until"), review=review)
    with store(db_url) as sessions, sessions() as session:
        page = search_articles(session, query, filters, limit=limit, offset=offset)
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
@output_option
@db_option
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

    query = ExportQuery(topic=topic, since=parse_when(since, "--since"), status=status)
    with store(db_url) as sessions, sessions() as session:
        chunks = run_export(session, query, fmt)
        if output is None:
            for chunk in chunks:
                click.echo(chunk, nl=False)
        else:
            write_file(output, chunks)


COMMANDS = (search, export)
