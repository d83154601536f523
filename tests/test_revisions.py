"""Revisions: the sentence diff and its classes, revisit outcomes, and a stored revision."""

from __future__ import annotations

import html
from dataclasses import replace
from typing import Any

from sqlalchemy import select

from pipeline.analysis import AnalysisChain
from pipeline.revisions import Fetched, diff_revision, revisit_outcome, sentence_pairs
from pipeline.revisit import apply_revisit
from pipeline.workers import topic_config
from storage.models import Article, ArticleClaim, ArticleRevision
from storage.repository import Store

OLD = ("Twitter has only 25 of 1,600 staff in Trust and Safety, records show. "
       "The engineering staff was cut by a third since October, people said. "
       "A new child-safety council will meet in January, the company said.")
URL = "https://northwire.example/2022/12/15/staff.html"


def test_a_changed_figure_and_a_correction_note_are_classified() -> None:
    new = (OLD.replace("25 of 1,600", "30 of 1,600")
           + " Correction: an earlier version of this article misstated the number of staff.")
    diff = diff_revision("Title", OLD, "Title", new)
    assert set(diff.changes) == {"figure_changed", "correction_added"}
    assert diff.removed == ("Twitter has only 25 of 1,600 staff in Trust and Safety, records "
                            "show.",)
    assert diff.added[0].startswith("Twitter has only 30 of 1,600")
    pairs = sentence_pairs(diff.removed, diff.added)
    assert pairs[0] == (diff.removed[0], diff.added[0]) and pairs[1][0] == ""


def test_headline_and_claim_sentences() -> None:
    new = OLD.replace("The engineering staff was cut by a third since October, people said. ",
                      "") + " Twitter's engineering staff was cut by more than half."
    diff = diff_revision("Staff", OLD, "Staff down", new,
                         old_claims=[("eng-third", "The engineering staff was cut by a third "
                                                   "since October, people said.")],
                         new_claims=[("eng-half", "Twitter's engineering staff was cut by more "
                                                  "than half.")])
    assert diff.changes[0] == "headline_changed"
    assert {"claim_sentence_added", "claim_sentence_removed"} <= set(diff.changes)
    assert {(c["change"], c["claim_id"]) for c in diff.claims} == {
        ("claim_sentence_removed", "eng-third"), ("claim_sentence_added", "eng-half")}
    assert "figure_changed" not in diff.changes  # another sentence, not another figure
    assert not diff_revision("T", OLD, " t ", OLD).changed


def test_revisits_that_are_not_revisions() -> None:
    def outcome(status: int | None, final: str = URL, text: str | None = OLD) -> str:
        return revisit_outcome(Fetched(status, final), URL, OLD, text)[0]

    assert outcome(404) == outcome(410) == "removed"
    assert outcome(None) == outcome(500) == outcome(403) == "failed"
    assert outcome(304) == "not_modified"
    assert outcome(200, "https://northwire.example/") == "redirected"
    assert outcome(200, text=None) == "failed"
    assert outcome(200) == "unchanged"
    assert revisit_outcome(Fetched(200, URL), URL, OLD, OLD, titles=("A", "B"))[0] == "revised"
    assert revisit_outcome(Fetched(200, URL), URL, OLD, OLD, titles=("A", " a"))[0] \
        == "unchanged"
    assert outcome(200, text="Advertisers paused spending on a platform this week, and "
                             "markets fell sharply on the news from Asia.") == "different"
    assert outcome(200, text=OLD + " One more sentence was added here.") == "revised"


def _page(title: str, text: str) -> bytes:
    paras = "".join(f"<p>{html.escape(line)}</p>" for line in text.split("\n"))
    return (f"<html><head><title>{title}</title></head><body><article>{paras}</article>"
            "</body></html>").encode()


def test_a_revisit_stores_a_revision_and_re_runs_claims_and_conflicts(
        world: Any, sessions: Any) -> None:
    store = Store(sessions)
    chain = AnalysisChain(replace(topic_config(world.topic), min_chars=50))
    aid = world.ids["original"]
    with sessions() as session:
        before = session.get(Article, aid)
        assert before is not None
        title, text = before.title, before.text
    assert apply_revisit(store, chain, aid, Fetched(200, URL), _page(title, text)) \
        == "unchanged"
    # the outlet rewords its sentence close to the claim: a revision, still matched
    worded = text.replace(
        "Twitter has only 25 of 1,600 staff in Trust and Safety, records show.",
        "Only 25 of the 1,600 workers still employed by Twitter work in Trust and Safety, "
        "records show.")
    assert apply_revisit(store, chain, aid, Fetched(200, URL), _page(title, worded)) \
        == "revised"
    with sessions() as session:
        staff = session.scalar(select(ArticleClaim).where(ArticleClaim.article_id == aid,
                                                          ArticleClaim.claim_id == "staff-25"))
        assert staff is not None and not staff.conflict
    # then edits the figure and adds a correction note
    edited = worded.replace("25 of", "30 of") + (
        "\nCorrection: an earlier version of this article misstated the number of staff.")
    assert apply_revisit(store, chain, aid, Fetched(200, URL), _page(title, edited)) == "revised"
    with sessions() as session:
        article = session.get(Article, aid)
        assert article is not None and article.revised and "30 of the 1,600" in article.text
        rows = session.scalars(select(ArticleRevision).where(ArticleRevision.article_id == aid)
                               .order_by(ArticleRevision.id)).all()
        assert rows[0].outcome == "original" and rows[0].text == text  # the first kept
        last = rows[-1]
        assert {"figure_changed", "correction_added"} <= set(last.changes)
        staff = session.scalar(select(ArticleClaim).where(ArticleClaim.article_id == aid,
                                                          ArticleClaim.claim_id == "staff-25"))
        assert staff is not None and staff.conflict  # 30 of 1,600 against the claim's 25
        assert "30" in staff.article_numbers
    # the digest JSON carries the revisions; the page shows the diff, escaped
    from claimwatch.digest import build_digest

    with sessions() as session:
        data = build_digest(session, since=None, include_reviewed=True)
    entry = next(a for a in data["articles"] if a["id"] == aid)
    assert "revised" in entry["flags"]
    assert {"figure_changed", "correction_added"} <= set(entry["revisions"][-1]["changes"])
    assert any("25 of the 1,600" in s for s in entry["revisions"][-1]["removed"])

    for status, expected in ((404, "removed"), (500, "failed")):
        assert apply_revisit(store, chain, aid, Fetched(status, URL)) == expected
    assert apply_revisit(store, chain, aid, Fetched(200, "https://elsewhere.example/x"),
                         _page(title, edited)) == "redirected"
    with sessions() as session:
        article = session.get(Article, aid)
        assert article is not None and "30 of the 1,600" in article.text  # not stored as revisions
        outcomes = [r.outcome for r in session.scalars(
            select(ArticleRevision).where(ArticleRevision.article_id == aid)
            .order_by(ArticleRevision.id))]
    assert outcomes[-3:] == ["removed", "failed", "redirected"]


def test_the_page_shows_the_revision_history_escaped(world: Any, client: Any,
                                                     sessions: Any) -> None:
    from tests.review_fixtures import XSS_IMG

    store = Store(sessions)
    chain = AnalysisChain(replace(topic_config(world.topic), min_chars=50))
    aid = world.ids["original"]
    with sessions() as session:
        article = session.get(Article, aid)
        assert article is not None
        title, text = article.title, article.text
    edited = text + f"\nCorrection: the figure was wrong {XSS_IMG} and is fixed now."
    assert apply_revisit(store, chain, aid, Fetched(200, URL), _page(title, edited)) \
        == "revised"
    page = client.get(f"/article/{aid}").text
    section = page[page.index('id="revisions"'):page.index('id="why"')]
    assert "correction_added" in section and "<ins>" in section
    assert "<img" not in section and "&lt;img" in section


def test_the_revisit_option_is_checked_when_the_topic_loads(tmp_path: Any) -> None:
    import pytest

    from config.loader import ConfigError, load_topic, revisit_window

    def topic(option: str) -> Any:
        path = tmp_path / "t.yaml"
        path.write_text("name: t\nquery: {}\nsources:\n"
                        f'  - {{name: s, kind: feed, url: "https://a.example/rss"{option}}}\n',
                        encoding="utf-8")
        return load_topic(path)

    assert revisit_window(topic("").sources[0]).days == 3  # on by default
    assert revisit_window(topic(", revisit: false").sources[0]) is None
    assert revisit_window(topic(", revisit: 12h").sources[0]).total_seconds() == 12 * 3600
    for bad in (", revisit: soon", ", revisit: 0", ", revisit: [1]"):
        with pytest.raises(ConfigError, match="revisit"):
            topic(bad)


def test_a_revisit_leaves_the_source_state_alone(store: Any) -> None:
    """A revisit fetches articles again, not the feed: its success must not reset a failing
    feed's count (which would hide the feed's alarm), and its failure is not the feed's."""
    from crawler.runner import SourceSummary, record_outcome

    store.update_source_state("t", "wire", consecutive_failures=3, last_error="feed down")
    for status in ("ok", "failed"):
        record_outcome(store, "t", SourceSummary(source="wire", kind="feed", run_id=None,
                                                 status=status, revisit=True))
        state = store.source_state("t", "wire")
        assert state is not None
        assert (state.consecutive_failures, state.last_error) == (3, "feed down")
    # the feed's own crawl still counts
    record_outcome(store, "t", SourceSummary(source="wire", kind="feed", run_id=None))
    state = store.source_state("t", "wire")
    assert state is not None and (state.consecutive_failures, state.last_error) == (0, None)
