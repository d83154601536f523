"""Full-text search over stored articles, on SQLite (FTS5) and PostgreSQL (tsvector + GIN)."""

from __future__ import annotations

import html
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import delete, update

from storage.db import init_db, make_engine, session_factory
from storage.models import Article, ArticleClaim
from storage.repository import ArticleRecord, CandidateRecord, MatchRecord, Store
from storage.search import (
    SearchError,
    SearchFilters,
    fts5_expression,
    highlight,
    search_articles,
)

T0 = datetime(2023, 1, 10, 9, tzinfo=UTC)

TEXTS = {
    1: ("Twitter fires child-safety team", "Northwire",
        "Twitter laid off most of the team that reviewed child sexual abuse material reports. "
        "Only 25 of 1,600 workers remain, the company said."),
    2: ("Musk says CSAM is priority number one", "Daily Ledger",
        "Elon Musk said removing child exploitation from Twitter was his top priority. "
        "Critics disputed the figures."),
    3: ("Tesla recall widens", "Motor Desk",
        "Tesla recalled 360,000 cars over its driver-assistance software, regulators reported."),
    4: ("Twitter fires child-safety team (copy)", "Syndicate",
        "Twitter laid off most of the team that reviewed child sexual abuse material reports. "
        "Only 30 of 1,600 workers remain, the company said."),
}


def record(n: int, **kw: object) -> ArticleRecord:
    title, outlet, text = TEXTS[n]
    values: dict[str, object] = dict(
        topic="t" if n != 3 else "cars", source="s", url=f"https://a.example/{n}",
        canonical_url=f"https://a.example/{n}", text=text, content_hash=f"h{n}", title=title,
        outlet=outlet, language="en", published=T0 + timedelta(days=n),
    )
    values.update(kw)
    return ArticleRecord(**values)  # type: ignore[arg-type]


@pytest.fixture
def store(db_url: str) -> Iterator[Store]:
    engine = make_engine(db_url)
    init_db(engine)
    store = Store(session_factory(engine))
    store.save(record(1, matches=[MatchRecord("layoffs", "Only 25 of 1,600 workers remain.", 1,
                                              95.0, "linked")]))
    store.save(record(2, candidates=[CandidateRecord("Critics disputed the figures.", 1, 0.7)]))
    store.save(record(3))
    store.save(record(4, duplicate_of_id=1, duplicate_kind="copy", duplicate_similarity=0.97,
                      matches=[MatchRecord("layoffs", "Only 30 of 1,600 workers remain.", 1,
                                           91.0, "linked", True, ["25", "1600"], ["30", "1600"])]))
    yield store
    engine.dispose()


def ids(store: Store, query: str, **filters: object) -> list[int]:
    with store.sessions() as session:
        page = search_articles(session, query, SearchFilters(**filters))  # type: ignore[arg-type]
        return sorted(hit.id - min_id(store) + 1 for hit in page.hits)


def min_id(store: Store) -> int:
    with store.sessions() as session:
        return int(session.query(Article.id).order_by(Article.id).first()[0])


def test_words_are_stemmed_and_all_required(store: Store) -> None:
    assert ids(store, "fired") == [1, 4]  # the titles say "fires": both stem to "fire"
    assert ids(store, "fire") == [1, 4]
    assert ids(store, "laying off") == []  # "laid" is not "lay"
    assert ids(store, "reviewed material") == [1, 4]
    assert ids(store, "recalls") == [3]
    assert ids(store, "child musk") == [2]


def test_title_outlet_and_text_are_searched(store: Store) -> None:
    assert ids(store, "priority number one") == [2]
    assert ids(store, "Syndicate") == [4]
    assert ids(store, "regulators") == [3]


def test_phrases_or_and_exclusion(store: Store) -> None:
    assert ids(store, '"child sexual abuse material"') == [1, 4]
    assert ids(store, '"abuse child"') == []
    assert ids(store, "CSAM OR recall") == [2, 3]
    assert ids(store, "twitter -musk") == [1, 4]
    assert ids(store, 'twitter -"laid off"') == [2]


def test_filters(store: Store) -> None:
    assert ids(store, "twitter", topic="cars") == []
    assert ids(store, "twitter", topic="t") == [1, 2, 4]
    assert ids(store, "twitter", flag="duplicate") == [4]
    assert ids(store, "twitter", flag="new_report") == [1, 2]
    assert ids(store, "twitter", flag="conflict") == [4]
    assert ids(store, "twitter", flag="new_claim_candidate") == [2]
    assert ids(store, "twitter", claim="layoffs") == [1, 4]
    assert ids(store, "twitter", outlet="northwire") == [1]
    assert ids(store, "twitter", language="de") == []
    assert ids(store, "twitter", since=T0 + timedelta(days=2)) == [2, 4]
    assert ids(store, "twitter", until=T0 + timedelta(days=2)) == [1, 2]
    assert ids(store, "twitter", review="reviewed") == []


def test_rejected_claim_links_do_not_count(store: Store) -> None:
    with store.sessions.begin() as session:
        session.execute(update(ArticleClaim).where(ArticleClaim.conflict.is_(True))
                        .values(review="rejected"))
    assert ids(store, "twitter", flag="conflict") == []


def test_index_follows_every_write(store: Store) -> None:
    """Kept in step by the database: updates and deletes are searchable at once."""
    first = min_id(store)
    with store.sessions.begin() as session:
        session.execute(update(Article).where(Article.id == first)
                        .values(title="Twitter disbands council", text="The safety council "
                                "was dissolved by email."))
    assert ids(store, "dissolved council") == [1]
    assert ids(store, "fire") == [4]
    with store.sessions.begin() as session:
        session.execute(delete(Article).where(Article.id == first + 3))
    assert ids(store, "fire") == []
    store.save(record(4, url="https://b.example/4", canonical_url="https://b.example/4",
                      content_hash="h5"))
    assert len(ids(store, "fire")) == 1


def test_snippets_mark_matches_and_escape(store: Store) -> None:
    with store.sessions() as session:
        page = search_articles(session, "regulators", SearchFilters())
    (hit,) = page.hits
    marked = highlight(hit.snippet + " <script>", html.escape)
    assert "<mark>regulators</mark>" in marked
    assert "&lt;script&gt;" in marked and "<script>" not in marked


def test_pages(store: Store) -> None:
    with store.sessions() as session:
        first = search_articles(session, "twitter", limit=2)
        assert len(first.hits) == 2 and first.next_offset == 2
        second = search_articles(session, "twitter", limit=2, offset=2)
        assert len(second.hits) == 1 and second.next_offset is None
        assert not {h.id for h in first.hits} & {h.id for h in second.hits}


@pytest.mark.parametrize("query, message", [
    ("", "type at least one word"),
    ("   ", "type at least one word"),
    ("-musk", "at least one word that is not excluded"),
    ("x" * 501, "longer than 500"),
    (" ".join(f"w{i}" for i in range(40)), "more than 32 words"),
])
def test_bad_queries_name_the_problem(store: Store, query: str, message: str) -> None:
    with store.sessions() as session, pytest.raises(SearchError, match=message):
        search_articles(session, query)


def test_fts5_syntax_cannot_be_injected(store: Store) -> None:
    for query in ['NEAR(twitter musk)', 'title:twitter', 'twitter"', '"', '*', '^twitter',
                  'AND OR NOT', '(twitter', "twitter) OR (", "tw*tter", "a'b"]:
        with store.sessions() as session:
            try:
                search_articles(session, query)
            except SearchError as exc:
                assert str(exc).startswith("query:")


def test_fts5_expression_quotes_every_word() -> None:
    assert fts5_expression('CSAM OR "sexual abuse" -musk report*') == \
        '(("CSAM" OR "sexual abuse") AND "report"*) NOT "musk"'
    assert fts5_expression('twitter -musk') == '("twitter") NOT "musk"'
    assert fts5_expression('say "he said ""no"""') == '"say" AND "he said" AND "no"'


def test_bad_filters() -> None:
    with pytest.raises(SearchError, match="flag: 'bogus'"):
        SearchFilters(flag="bogus")
    with pytest.raises(SearchError, match="review:"):
        SearchFilters(review="maybe")
    with pytest.raises(SearchError, match="since:"):
        SearchFilters(since=T0, until=T0 - timedelta(days=1))


def test_a_database_migrated_from_0003_indexes_its_articles(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from storage.schema import upgrade

    engine = make_engine(f"sqlite:///{tmp_path / 'old.sqlite'}")
    upgrade(engine, "0003", migrate_fresh=True)
    with engine.begin() as conn:
        conn.exec_driver_sql(
            "INSERT INTO articles (topic, source, url, canonical_url, text, content_hash, "
            "fetched_at, review_status, title) VALUES ('t', 's', 'u', 'u', "
            "'Moderators were dismissed in November.', 'h', '2023-01-01', 'open', 'Old')")
    upgrade(engine)
    with session_factory(engine)() as session:
        assert [h.title for h in search_articles(session, "dismissed moderators").hits] == ["Old"]
    engine.dispose()


# -- the commands -------------------------------------------------------------------------------

def _cli(db_url: str, *args: str):  # type: ignore[no-untyped-def]
    from click.testing import CliRunner

    from claimwatch.cli import main

    return CliRunner().invoke(main, [*args, "--db", db_url])


def test_search_command_formats(store: Store, db_url: str) -> None:
    import csv
    import io
    import json

    text = _cli(db_url, "search", "child abuse", "--topic", "t")
    assert text.exit_code == 0, text.output
    assert "Northwire" in text.output and "[child]" in text.output and "copy of #" in text.output
    data = json.loads(_cli(db_url, "search", "recall", "--format", "json").output)
    assert [r["title"] for r in data["results"]] == ["Tesla recall widens"]
    assert data["next_offset"] is None
    rows = list(csv.DictReader(io.StringIO(
        _cli(db_url, "search", "twitter", "--format", "csv", "--flag", "conflict").output)))
    assert [r["outlet"] for r in rows] == ["Syndicate"]
    none = _cli(db_url, "search", "zeppelin")
    assert none.exit_code == 0 and "no stored article matches 'zeppelin'" in none.output


@pytest.mark.parametrize("args, message", [
    (["search", "   "], "query: type at least one word"),
    (["search", "x", "--since", "99999999999999999999d"], "--since"),
    (["search", "x", "--flag", "nope"], "--flag"),
    (["export"], "--format"),
])
def test_commands_reject_bad_input_in_one_line(store: Store, db_url: str, args: list[str],
                                               message: str) -> None:
    result = _cli(db_url, *args)
    assert result.exit_code in (1, 2) and message in result.output
    assert "Traceback" not in result.output


def test_export_csv_has_a_row_per_link_and_defuses_formulas(store: Store, db_url: str,
                                                            tmp_path) -> None:  # type: ignore[no-untyped-def]
    import csv

    with store.sessions.begin() as session:
        session.execute(update(Article).where(Article.outlet == "Motor Desk")
                        .values(title='=HYPERLINK("http://evil.example/x","click")'))
    out = tmp_path / "links.csv"
    result = _cli(db_url, "export", "--format", "csv", "-o", str(out))
    assert result.exit_code == 0, result.output
    with out.open(encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    by_outlet: dict[str, list[dict[str, str]]] = {}
    for row in rows:
        by_outlet.setdefault(row["outlet"], []).append(row)
    assert [r["claim_id"] for r in by_outlet["Northwire"]] == ["layoffs"]
    assert by_outlet["Syndicate"][0]["conflict"] == "1"
    assert by_outlet["Syndicate"][0]["article_numbers"] == "30|1600"
    assert by_outlet["Syndicate"][0]["flags"] == "duplicate|conflict"
    assert by_outlet["Daily Ledger"][0]["claim_id"] == ""  # no link: one row, claim columns empty
    assert by_outlet["Motor Desk"][0]["title"] == "'=HYPERLINK(\"http://evil.example/x\",\"click\")"
    assert not (tmp_path / "links.csv.partial").exists()


def test_export_jsonl_is_the_digest_contract(store: Store, db_url: str) -> None:
    import json

    result = _cli(db_url, "export", "--format", "jsonl", "--topic", "t")
    lines = [json.loads(line) for line in result.output.splitlines()]
    assert len(lines) == 3 and {e["topic"] for e in lines} == {"t"}
    conflict = next(e for e in lines if "conflict" in e["flags"])
    assert conflict["conflicts"][0]["article_numbers"] == ["30", "1600"]
    assert conflict["duplicate_of"]["kind"] == "copy"
    assert lines[0]["title"] == "Twitter fires child-safety team"  # text kept intact in JSON


def test_export_pages_through_a_store_larger_than_a_page(db_url: str, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    import claimwatch.digest.export as export_module

    monkeypatch.setattr(export_module, "PAGE", 2)
    engine = make_engine(db_url)
    init_db(engine)
    store = Store(session_factory(engine))
    for n in range(7):
        store.save(record(1, url=f"https://p.example/{n}", canonical_url=f"https://p.example/{n}",
                          content_hash=f"p{n}"))
    engine.dispose()
    result = _cli(db_url, "export", "--format", "jsonl")
    assert [json_id for json_id in
            (__import__("json").loads(line)["url"] for line in result.output.splitlines())] == \
        [f"https://p.example/{n}" for n in range(7)]


def test_disputes_flag_and_the_stance_in_the_export(store: Store, db_url: str) -> None:
    import csv
    import io

    store.save(record(2, url="https://d.example/2", canonical_url="https://d.example/2",
                      content_hash="d2", matches=[MatchRecord(
                          "priority", "Musk never said that.", 0, 88.0, "linked",
                          stance="disputes")]))
    assert len(ids(store, "musk")) == 2  # the record-2 text, stored twice
    assert len(ids(store, "musk", flag="disputes")) == 1  # only the copy that disputes
    rows = list(csv.DictReader(io.StringIO(_cli(db_url, "export", "--format", "csv").output)))
    stances = {r["claim_id"]: r["stance"] for r in rows if r["claim_id"]}
    assert stances["priority"] == "disputes" and stances["layoffs"] == "repeats"
