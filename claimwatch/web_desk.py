"""The desk's views of the review page: search, export downloads, a claim's timeline and a
topic's articles per day. A mixin of :class:`claimwatch.web.ReviewApp` (which routes to
them); every scraped value goes through the page's one escaping function ``h``."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from claimwatch import charts
from claimwatch.digest import DigestError, parse_since
from claimwatch.digest.export import ExportQuery, export
from storage.models import KnownClaim
from storage.search import (
    FLAGS as SEARCH_FLAGS,
)
from storage.search import (
    REVIEW_STATUSES,
    SearchError,
    SearchFilters,
    highlight,
    search_articles,
)

if TYPE_CHECKING:  # pragma: no cover
    from claimwatch.web import Request, Response

PAGE_SIZE = 20
DESK_CSS = """
.searchbar { display:flex; flex-wrap:wrap; gap:8px 12px; align-items:center; padding:10px 12px;
  background:var(--card); border:1px solid var(--line); border-radius:6px; font-size:14px; }
.searchbar input[type=search] { flex:1 1 260px; font:inherit; padding:4px 8px; min-width:0; }
.hit { background:var(--card); border:1px solid var(--line); border-radius:6px;
  padding:10px 14px; margin:8px 0; }
.hit h2 { font-size:16px; margin:0; } .hit .snippet { margin:4px 0 0; }
.hit mark { background:#fde68a; }
.downloads { font-size:14px; margin:8px 0; } .downloads a { margin-right:12px; }
.pager { display:flex; gap:16px; margin:12px 0; }
.chart { width:100%; height:auto; background:var(--card); border:1px solid var(--line);
  border-radius:6px; display:block; }
.legend { list-style:none; display:flex; flex-wrap:wrap; gap:4px 18px; padding:0; margin:6px 0;
  font-size:13px; color:var(--muted); }
.legend li { display:flex; align-items:center; gap:6px; }
details.data { margin:10px 0; } details.data table { margin-top:6px; }
.table-wrap { overflow-x:auto; }
header .who { color:#d4d4d8; font-size:13px; margin-right:8px; }
header form.signout { display:inline-flex; margin:0; }
form.login { display:flex; flex-direction:column; gap:10px; max-width:360px; }
form.login label { display:flex; flex-direction:column; gap:4px; }
form.login input { font:inherit; padding:5px 8px; }
article.item.current { outline:3px solid var(--blue); outline-offset:2px; }
article.item h2 input.select { width:18px; height:18px; vertical-align:middle; }
form.bulk { margin:8px 0 0; }
.undo { display:flex; flex-wrap:wrap; gap:8px; align-items:center; margin:8px 0; padding:6px 12px;
  background:var(--card); border:1px solid var(--line); border-radius:6px; font-size:14px; }
.undo form { margin:0; }
.toast { position:fixed; left:50%; bottom:16px; transform:translateX(-50%); max-width:92vw;
  display:flex; gap:12px; align-items:center; padding:10px 16px; border-radius:6px;
  background:#18181b; color:#fff; font-size:14px; box-shadow:0 4px 16px rgba(0,0,0,.25); }
.toast button { background:#fff; }
.toast-error { background:#991b1b; }
.keys kbd { display:inline-block; min-width:5em; font:13px ui-monospace, monospace; }
@media (max-width: 600px) {
  .item, .box, .hit { padding:10px; }
  form.inline button { padding:6px 12px; }
  table { display:block; overflow-x:auto; }
  #claims table, #claims tbody, #claims tr, #claims td, #candidates table, #candidates tbody,
  #candidates tr, #candidates td { display:block; width:100%; }
  #claims thead, #candidates thead { display:none; }
  #claims tr, #candidates tr { border-bottom:1px solid var(--line); padding:6px 0; }
  #claims td, #candidates td { border:0; padding:2px 0; }
  .filters { gap:6px 10px; }
  main { padding:8px 10px 32px; } header { flex-wrap:wrap; gap:8px; padding:8px 10px; }
  header nav a { margin-right:10px; }
}
"""


def _date_arg(value: str, name: str) -> tuple[datetime | None, str]:
    if not value:
        return None, ""
    try:
        return parse_since(value), ""
    except DigestError:
        return None, f"{name}: {value!r} is not a duration like 7d or an ISO date"


class DeskViews:
    """Search, export, timeline and daily-chart pages (mixed into ReviewApp)."""

    # -- search ------------------------------------------------------------------------------

    def _search_filters(self, req: Request) -> tuple[SearchFilters | None, list[str]]:
        problems: list[str] = []
        since, problem = _date_arg(req.arg("since"), "since")
        problems += [problem] if problem else []
        until, problem = _date_arg(req.arg("until"), "until")
        problems += [problem] if problem else []
        flag = req.arg("flag")
        review = req.arg("review")
        try:
            filters = SearchFilters(
                topic=req.arg("topic") or None, flag=flag or None,
                claim=req.arg("claim") or None, outlet=req.arg("outlet") or None,
                language=req.arg("language") or None, since=since, until=until,
                review=review or None)
        except SearchError as exc:
            return None, [*problems, str(exc)]
        return filters, problems

    def _search(self, req: Request) -> tuple[Any, list[str]]:
        from claimwatch.web import _int

        query = req.arg("q")
        filters, problems = self._search_filters(req)
        if not query or filters is None or problems:
            return None, problems
        offset = min(max(_int(req.arg("offset"), 0), 0), 10_000)
        try:
            with self._read() as session:  # type: ignore[attr-defined]
                return search_articles(session, query, filters, limit=PAGE_SIZE,
                                       offset=offset), []
        except SearchError as exc:
            return None, [str(exc)]

    def json_search(self, req: Request) -> Response:
        from claimwatch.web import HTTPError, Response

        if not req.arg("q"):
            raise HTTPError(400, "q: give the words to search for")
        page, problems = self._search(req)
        if problems:
            raise HTTPError(400, "; ".join(problems))
        return Response.json({
            "query": page.query, "offset": page.offset, "next_offset": page.next_offset,
            "results": [{"id": hit.id, "topic": hit.topic, "title": hit.title, "url": hit.url,
                         "outlet": hit.outlet, "language": hit.language,
                         "published": hit.published, "fetched_at": hit.fetched_at,
                         "review": hit.review_status, "duplicate_of": hit.duplicate_of_id,
                         "snippet": highlight(hit.snippet, str, "", "")}
                        for hit in page.hits]})

    def page_search(self, req: Request) -> Response:
        from claimwatch.web import fmt_dt, h

        page, problems = self._search(req)
        with self._read() as session:  # type: ignore[attr-defined]
            topics = self._topic_names(session)  # type: ignore[attr-defined]

        def select_box(name: str, label: str, options: list[tuple[str, str]]) -> str:
            current = req.arg(name)
            items = "".join(
                f'<option value="{h(v)}"{" selected" if v == current else ""}>{h(t)}</option>'
                for v, t in options)
            return f'<label>{h(label)} <select name="{name}">{items}</select></label>'

        def text_box(name: str, label: str, size: int = 8) -> str:
            return (f'<label>{h(label)} <input name="{name}" value="{h(req.arg(name))}" '
                    f'size="{size}"></label>')

        form = (
            f'<form class="searchbar" method="get" action="{h(req.url("/search"))}" '
            'role="search">'
            f'<input type="search" name="q" value="{h(req.arg("q"))}" aria-label="Search words" '
            'placeholder="words, &quot;a phrase&quot;, OR, -exclude" autofocus>'
            + select_box("topic", "Topic", [("", "all")] + [(t, t) for t in topics])
            + select_box("flag", "Flag", [("", "any")] + [(f, f.replace("_", " "))
                                                          for f in SEARCH_FLAGS])
            + select_box("review", "Review", [("", "any")] + [(r, r) for r in REVIEW_STATUSES])
            + text_box("claim", "Claim", 14) + text_box("outlet", "Outlet", 12)
            + text_box("language", "Language", 3) + text_box("since", "Since", 8)
            + text_box("until", "Until", 8)
            + '<button type="submit" class="ok">Search</button></form>'
        )
        parts = ["<h1>Search</h1>", form]
        for problem in problems:
            parts.append(f'<p class="flash flash-error" role="alert">{h(problem)}</p>')
        if page is not None:
            params = {k: v for k, v in req.query.items() if k != "offset"}
            flat = {k: v[0] for k, v in params.items()}
            if not page.hits:
                parts.append(f'<p class="empty">No stored article matches {h(page.query)}.</p>')
            else:
                last = page.offset + len(page.hits)
                parts.append(f'<p class="count" id="count">Results {page.offset + 1}–{last}, '
                             "best match first.</p>")
                ids = ",".join(str(hit.id) for hit in page.hits)
                parts.append(
                    '<p class="downloads">Download these results: '
                    f'<a href="{h(req.url("/export", format="csv", ids=ids))}" download>CSV</a>'
                    f'<a href="{h(req.url("/export", format="jsonl", ids=ids))}" download>'
                    "JSON Lines</a></p>")
            for hit in page.hits:
                copy = (f' · copy of <a href="{h(req.url(f"/article/{hit.duplicate_of_id}"))}">'
                        f"#{hit.duplicate_of_id}</a>" if hit.duplicate_of_id else "")
                parts.append(
                    f'<article class="hit" id="hit-{hit.id}"><h2><a href="'
                    f'{h(req.url(f"/article/{hit.id}"))}">{h(hit.title or hit.url)}</a></h2>'
                    f'<p class="meta">{h(hit.outlet or "unknown outlet")} · '
                    f"{h(fmt_dt(hit.published or hit.fetched_at))} · {h(hit.topic)} · "
                    f"{h(hit.review_status)}{copy}</p>"
                    f'<p class="snippet">{highlight(hit.snippet, h)}</p></article>')
            pager = []
            if page.offset > 0:
                prev = max(page.offset - PAGE_SIZE, 0)
                pager.append(f'<a href="{h(req.url("/search", **flat, offset=str(prev)))}" '
                             'rel="prev">← Previous</a>')
            if page.next_offset is not None:
                following = req.url("/search", **flat, offset=str(page.next_offset))
                pager.append(f'<a href="{h(following)}" rel="next">Next →</a>')
            if pager:
                parts.append('<nav class="pager">' + "".join(pager) + "</nav>")
        elif not problems:
            parts.append('<p class="muted">Search the title, text and outlet of every stored '
                         "article. Words are stemmed and all required.</p>")
        return self._layout(req, "Search", "\n".join(parts), "search")  # type: ignore[attr-defined]

    # -- export ------------------------------------------------------------------------------

    def export_download(self, req: Request) -> Response:
        from claimwatch.web import HTTPError, Response

        fmt = req.arg("format", "csv")
        if fmt not in ("csv", "jsonl"):
            raise HTTPError(400, "format: csv or jsonl")
        since, problem = _date_arg(req.arg("since"), "since")
        if problem:
            raise HTTPError(400, problem)
        status = req.arg("status")
        if status in ("", "all"):
            status = ""
        elif status not in REVIEW_STATUSES:
            raise HTTPError(400, f"status: {status!r} is not one of open, reviewed, dismissed, all")
        ids: tuple[int, ...] | None = None
        if req.arg("ids"):
            try:
                ids = tuple(int(part) for part in req.arg("ids").split(",")[:500])
            except ValueError:
                raise HTTPError(400, "ids: a comma-separated list of article ids") from None
            if any(i > 2**62 for i in ids):
                raise HTTPError(400, "ids: an article id is out of range")
        flag = req.arg("flag")
        if flag and flag not in SEARCH_FLAGS:
            raise HTTPError(400, f"flag: {flag!r} is not one of {', '.join(SEARCH_FLAGS)}")
        query = ExportQuery(topic=req.arg("topic") or None, since=since, status=status or None,
                            ids=ids, flag=flag or None, claim=req.arg("claim") or None)
        stamp = datetime.now().strftime("%Y%m%d-%H%M")
        name = f"claimwatch-{query.topic or 'all'}-{stamp}.{fmt}"
        safe_name = "".join(c if c.isalnum() or c in "-_." else "_" for c in name)

        def chunks() -> Iterator[bytes]:
            with self._read() as session:  # type: ignore[attr-defined]
                for chunk in export(session, query, fmt):
                    yield chunk.encode("utf-8")

        return Response(
            chunks(), 200,  # type: ignore[arg-type]
            "text/csv; charset=utf-8" if fmt == "csv" else "application/x-ndjson; charset=utf-8",
            headers=[("Content-Disposition", f'attachment; filename="{safe_name}"')])

    def download_links(self, req: Request, **filters: str) -> str:
        """Export links for a filtered list (the article list passes its filters)."""
        from claimwatch.web import h

        return ('<p class="downloads">Download this list: '
                f'<a href="{h(req.url("/export", format="csv", **filters))}" download>CSV</a>'
                f'<a href="{h(req.url("/export", format="jsonl", **filters))}" download>'
                "JSON Lines</a></p>")

    # -- pictures ----------------------------------------------------------------------------

    def _claim(self, req: Request, claim_id: str) -> tuple[str, str | None, list[Any]]:
        from claimwatch.web import HTTPError

        topic = req.arg("topic")
        if len(claim_id) > 200:
            raise HTTPError(404, "no such claim")
        with self._read() as session:  # type: ignore[attr-defined]
            known = session.query(KnownClaim).filter(KnownClaim.claim_id == claim_id)
            if topic:
                known = known.filter(KnownClaim.topic == topic)
            rows = known.limit(2).all()
            if not topic:
                if len(rows) > 1:
                    raise HTTPError(400, f"claim {claim_id!r} is in several topics: add ?topic=")
                if not rows:
                    raise HTTPError(404, f"no claim {claim_id!r}")
                topic = rows[0].topic
            text = rows[0].text if rows else None
            points = charts.claim_timeline(session, topic, claim_id)
        if text is None and not points:
            raise HTTPError(404, f"no claim {claim_id!r} in topic {topic!r}")
        return topic, text, points

    def json_claim(self, req: Request, claim_id: str) -> Response:
        from claimwatch.web import Response

        topic, text, points = self._claim(req, claim_id)
        return Response.json({"topic": topic, "claim_id": claim_id, "text": text,
                              "timeline": charts.as_dicts(points)})

    def page_claim(self, req: Request, claim_id: str) -> Response:
        from claimwatch.web import h

        topic, text, points = self._claim(req, claim_id)

        def link(article_id: int) -> str:
            return req.url(f"/article/{article_id}")

        outlets = len({p.outlet for p in points})
        counts: dict[str, int] = {}
        for p in points:
            counts[p.kind] = counts.get(p.kind, 0) + 1
        said = ", ".join(charts.counted(k, n) for k, n in counts.items())
        shown_text = h(text) if text else \
            '<span class="muted">not in the claims table any more</span>'
        topic_url = req.url("/topic/" + quote(topic, safe=""))
        parts = [
            f"<h1>Claim <code>{h(claim_id)}</code></h1>",
            f'<p class="claim-text">{shown_text}</p>',
            f'<p class="count">{len(points)} article(s) in {outlets} outlet(s) of '
            f'<a href="{h(topic_url)}">{h(topic)}</a>'
            + (f": {h(said)}" if said else "") + "; rejected matches left out.</p>",
        ]
        if points:
            parts.append('<section class="box" id="timeline"><h2>How it spread</h2>'
                         + charts.timeline_svg(points, link, claim_id)
                         + charts.legend_html([p.kind for p in points])
                         + '<details class="data" open><summary>The same as a table</summary>'
                         '<div class="table-wrap">' + charts.timeline_table(points, link)
                         + "</div></details></section>")
        else:
            parts.append('<p class="empty">No stored article carries this claim yet.</p>')
        parts.append(f'<p><a href="{h(req.url("/", topic=topic, status="all", claim=claim_id))}">'
                     "Review these articles</a></p>")
        return self._layout(req, f"Claim {claim_id}", "\n".join(parts), "claims")  # type: ignore[attr-defined]

    def page_topic(self, req: Request, topic: str) -> Response:
        from claimwatch.web import HTTPError, _int, h

        days = min(max(_int(req.arg("days"), 30), 1), 366)
        with self._read() as session:  # type: ignore[attr-defined]
            if topic not in self._topic_names(session):  # type: ignore[attr-defined]
                raise HTTPError(404, f"no topic {topic!r}")
            counts = charts.daily_counts(session, topic, days=days)
        total = sum(c.total for c in counts)
        here = "/topic/" + quote(topic, safe="")
        choices = " · ".join(
            f'<a href="{h(req.url(here, days=str(d)))}">{d} days</a>'
            if d != days else f"<strong>{d} days</strong>" for d in (7, 30, 90, 365))
        parts = [f"<h1>{h(topic)}</h1>",
                 f'<p class="count">{total} article(s) fetched in the last {days} days, by the '
                 f"day they were published. {choices}</p>"]
        if counts:
            parts.append('<section class="box" id="daily"><h2>Articles per day</h2>'
                         + charts.daily_svg(counts, topic)
                         + '<details class="data"><summary>The same as a table</summary>'
                         '<div class="table-wrap">' + charts.daily_table(counts)
                         + "</div></details></section>")
        else:
            parts.append('<p class="empty">Nothing fetched in this window.</p>')
        links = " · ".join([
            f'<a href="{h(req.url("/", topic=topic))}">Review its articles</a>',
            f'<a href="{h(req.url("/claims", topic=topic))}">Its claims</a>',
            f'<a href="{h(req.url("/export", topic=topic, format="csv"))}" download>'
            "Export CSV</a>",
            f'<a href="{h(req.url("/export", topic=topic, format="jsonl"))}" download>'
            "Export JSON Lines</a>"])
        parts.append(f"<p>{links}</p>")
        return self._layout(req, topic, "\n".join(parts), "")  # type: ignore[attr-defined]


