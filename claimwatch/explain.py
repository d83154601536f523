"""``claimwatch explain URL_OR_ARTICLE_ID`` and the article page's "why?" panel.

For one article: how long its extracted text is and which extractor settings
ran, which query terms it does or does not contain, its best claims per sentence
with their scores and the tier threshold each missed (pipeline/explain.py), and
its near-duplicate candidates with their similarity. For a URL that is not
stored: why not, as far as the store knows (kept as off-topic with its text,
skipped as off-topic, refused by robots.txt or the address guard, failed to
download, too short, or at a canonical URL already stored: the last crawl that
met it recorded which, with the detail and when, in ``unstored_pages``; or never
met by a crawl of the topic).

:func:`explain_article` and :func:`explain_url` return plain data (dicts and
lists) that :func:`explain_lines` prints and the page renders.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from config.models import Topic
from pipeline.analysis import AnalysisChain
from pipeline.dedup import classify
from pipeline.explain import claim_report, extraction_report, query_report
from pipeline.unstored import REASONS
from pipeline.urls import canonical_url
from pipeline.workers import topic_config
from storage.models import Article, OffTopicPage, SkippedUrl, UnstoredPage
from storage.repository import Store

MAX_DUPLICATES = 5


def explain_article(sessions: sessionmaker[Session], topic: Topic, article_id: int
                    ) -> dict[str, Any]:
    """Why the stored article ``article_id`` was stored, matched and flagged as it was."""
    chain = AnalysisChain(topic_config(topic))
    with sessions() as session:
        article = session.get(Article, article_id)
        if article is None:
            return {"found": False, "article_id": article_id,
                    "why_not_stored": f"no stored article has id {article_id}"}
        title, text, url = article.title, article.text, article.url
        version, stored_topic = article.claims_version, article.topic
    report = _text_report(chain, title, text)
    report.update({"found": True, "stored": True, "article_id": article_id, "url": url,
                   "title": title, "topic": stored_topic,
                   "matched_against": version,
                   "behind_claims_table": version != chain.claims_version,
                   "near_duplicates": _near_duplicates(Store(sessions), stored_topic,
                                                       article_id, text, chain)})
    return report


def explain_url(sessions: sessionmaker[Session], topic: Topic, url: str) -> dict[str, Any]:
    """The stored article at ``url``, or why none is stored."""
    canonical = canonical_url(url)
    with sessions() as session:
        found = session.scalar(select(Article.id).where(
            Article.topic == topic.name,
            (Article.canonical_url == canonical) | (Article.url == url)))
        page = session.scalar(select(OffTopicPage).where(
            OffTopicPage.topic == topic.name,
            (OffTopicPage.canonical_url == canonical) | (OffTopicPage.url == url)))
        skipped = session.scalar(select(SkippedUrl).where(
            SkippedUrl.topic == topic.name, SkippedUrl.url.in_({url, canonical})))
        kept = (page.title, page.text, page.fetched_at) if page is not None else None
        unstored = _unstored_row(session, topic.name, url, canonical)
    if found is not None:
        return explain_article(sessions, topic, found)
    if kept is not None:
        chain = AnalysisChain(topic_config(topic))
        report = _text_report(chain, kept[0], kept[1])
        report.update({"found": True, "stored": False, "url": url, "title": kept[0],
                       "topic": topic.name,
                       "why_not_stored": "off-topic: the topic query did not match it when it "
                                         f"was fetched ({kept[2]:%Y-%m-%d %H:%M} UTC); its text "
                                         "is kept, and `claimwatch rematch` stores it once the "
                                         "query matches"})
        return report
    report: dict[str, Any] = {"found": False, "stored": False, "url": url,
                              "topic": topic.name}
    if unstored is not None:
        report["unstored"] = unstored
        why = _unstored_words(unstored)
    elif skipped is not None:
        why = f"skipped ({skipped.reason}) on {skipped.seen_at:%Y-%m-%d %H:%M} UTC"
    else:
        why = "never fetched by a crawl of this topic: no crawl recorded meeting a link to it"
    report["why_not_stored"] = why
    return report


def _unstored_row(session: Session, topic: str, url: str, canonical: str
                  ) -> dict[str, Any] | None:
    """The latest record of why ``url`` was not stored, as plain data."""
    row = session.scalars(select(UnstoredPage).where(
        UnstoredPage.topic == topic, UnstoredPage.url.in_({url, canonical}))
        .order_by(UnstoredPage.seen_at.desc()).limit(1)).first()
    if row is None:
        return None
    return {"reason": row.reason, "detail": row.detail, "seen_at": row.seen_at}


def _unstored_words(unstored: dict[str, Any]) -> str:
    """e.g. "robots.txt forbids fetching it (forbidden by robots.txt; 2026-12-06 08:30 UTC)"."""
    words = REASONS.get(unstored["reason"], unstored["reason"])
    detail = f"{unstored['detail']}; " if unstored["detail"] else ""
    return (f"{words} ({detail}last met by a crawl on {unstored['seen_at']:%Y-%m-%d %H:%M} UTC;"
            " a later crawl tries it again)")


def _text_report(chain: AnalysisChain, title: str | None, text: str) -> dict[str, Any]:
    return {"extraction": extraction_report(chain, text),
            "query": query_report(chain, title, text),
            "claims": claim_report(chain, text)}


def _near_duplicates(store: Store, topic: str, article_id: int, text: str,
                     chain: AnalysisChain) -> list[dict[str, Any]]:
    """Stored articles sharing LSH band keys with this one, and how similar they are."""
    _, keys = chain.dedup_keys(text)
    ids = [i for i in store.band_candidates(topic, keys, limit=MAX_DUPLICATES + 1)
           if i != article_id][:MAX_DUPLICATES]
    rows = []
    for other in store.texts(ids):
        verdict = classify(other.text, text)
        rows.append({"article_id": other.id, "url": other.url,
                     "similarity": round(float(verdict.similarity), 3),
                     "kind": str(verdict.kind) if verdict.kind else "not a duplicate"})
    return rows


def explain_lines(report: dict[str, Any]) -> list[str]:
    """The report as ``claimwatch explain`` prints it."""
    head = (f"article #{report['article_id']}: {report.get('url')}" if report.get("stored")
            else f"{report.get('url') or report.get('article_id')}: not stored")
    lines = [head]
    if report.get("why_not_stored"):
        lines.append(f"why not stored: {report['why_not_stored']}")
    if not report.get("found"):
        return lines
    ex = report["extraction"]
    lines.append(f"extracted text: {ex['chars']} characters, {ex['words']} words "
                 f"(favor_precision={ex['favor_precision']}, min_chars={ex['min_chars']})")
    query = report["query"]
    lines.append("topic query: " + ("matches" if query["on_topic"] else
                                    "does not match: " + "; ".join(query["why_not"])))
    for group, terms in query["terms"].items():
        if terms:
            lines.append(f"  {group}: " + ", ".join(
                f"{t['term']} ({'found' if t['found'] else 'absent'})" for t in terms))
    claims = report["claims"]
    if report.get("stored"):
        state = ("behind the current claims table: run `claimwatch rematch`"
                 if report["behind_claims_table"] else "the current claims table")
        lines.append(f"matched against: {report['matched_against'] or 'unknown'} ({state})")
    th = claims["thresholds"]
    lines.append(f"claims: {claims['sentences']} sentences against {claims['claims_in_table']} "
                 f"claims (linked >= {th['linked']:g}, suggested >= {th['suggested']:g})")
    if not claims["best"]:
        lines.append("  no sentence comes near any claim")
    for row in claims["best"]:
        lines.append(f"  [{row['sentence_index']}] {row['sentence'][:160]}")
        for c in row["claims"]:
            reached = c["tier"] or "no tier"
            missed = (f", missed {c['missed']} (needs {c['needs']:g})" if c["missed"] else "")
            lines.append(f"      {c['claim_id']}: {c['score']:.2f} -> {reached}{missed}")
    if report.get("stored"):
        dups = report["near_duplicates"]
        lines.append("near-duplicate candidates: " + (", ".join(
            f"#{d['article_id']} {d['kind']} {d['similarity']:.2f}" for d in dups) or "none"))
    return lines


def target_topic(sessions: sessionmaker[Session], target: str) -> str | None:
    """The topic of the stored article (or off-topic or unstored page) ``target`` names."""
    with sessions() as session:
        if target.isdigit():
            return session.scalar(select(Article.topic).where(Article.id == int(target)))
        canonical = canonical_url(target)
        for model in (Article, OffTopicPage):
            found = session.scalar(select(model.topic).where(
                (model.canonical_url == canonical) | (model.url == target)).limit(1))
            if found:
                return str(found)
        found = session.scalar(select(UnstoredPage.topic).where(
            UnstoredPage.url.in_({target, canonical})).order_by(UnstoredPage.seen_at.desc())
            .limit(1))
        if found:
            return str(found)
    return None
