"""The desk pages of the review app: search, export downloads, a claim's timeline, a topic's
articles per day. In process through the WSGI app, with the hostile article of the world."""

from __future__ import annotations

import csv
import io
import json
import re
from typing import Any

from storage.db import open_db
from tests.review_fixtures import TOPIC, World
from tests.test_web import OUR_SCRIPT, Client, assert_inert, parse


def assert_inert_with_charts(html: str) -> None:
    """As assert_inert, but the page's own SVG charts are allowed (only ours: no on*)."""
    tags = parse(html)
    tags.tags = [t for t in tags.tags if t != OUR_SCRIPT]
    names = {t for t, _ in tags.tags}
    assert not names & {"script", "img", "iframe", "object", "embed", "b", "foreignobject"}
    for tag, attrs in tags.tags:
        for name, value in attrs.items():
            assert not name.startswith("on"), (tag, attrs)
            if name in ("href", "src", "action", "xlink:href"):
                assert not (value or "").strip().lower().startswith("javascript:"), (tag, attrs)


def test_search_page_finds_highlights_and_escapes(client: Client, world: World) -> None:
    reply = client.get("/search?q=safety+team")
    assert reply.status == 200
    hits = [int(i) for i in re.findall(r'<article class="hit" id="hit-(\d+)"', reply.text)]
    assert set(hits) == {world.ids["original"], world.ids["copy"]}
    assert "<mark>safety</mark>" in reply.text and "<mark>team</mark>" in reply.text
    assert f'copy of <a href="/article/{world.ids["original"]}">' in reply.text
    assert_inert(reply.text)
    hostile = client.get("/search?q=hostile+title")
    assert f'id="hit-{world.ids["hostile"]}"' in hostile.text
    assert "<script>" not in hostile.text.split("<main>")[1]
    assert_inert(hostile.text)


def test_search_filters_and_json(client: Client, world: World) -> None:
    data = client.get("/search.json?q=twitter&flag=duplicate").json()
    assert [r["id"] for r in data["results"]] == [world.ids["copy"]]
    data = client.get("/search.json?q=twitter&outlet=civic+post").json()
    assert [r["id"] for r in data["results"]] == [world.ids["other"]]
    data = client.get("/search.json?q=staff&claim=engineers-half").json()
    assert {r["id"] for r in data["results"]} == {world.ids["original"], world.ids["other"]}
    assert client.get("/search.json?q=twitter&topic=nope").json()["results"] == []


def test_search_reports_bad_input_without_failing(client: Client) -> None:
    for url, fragment in [
        ("/search?q=-only", "at least one word that is not excluded"),
        ("/search?q=x&since=99999999999999999999d", "since:"),
        ("/search?q=x&flag=bogus", "flag: &#39;bogus&#39;"),
        ("/search?q=" + "x" * 600, "longer than 500"),
    ]:
        reply = client.get(url)
        assert reply.status == 200 and fragment in reply.text, url
    assert client.get("/search.json?q=-only").status == 400
    assert client.get("/search.json").status == 400
    assert client.get("/search?q=twitter&offset=99999999999999999999").status == 200


def test_search_pages(client: Client, world: World) -> None:
    import claimwatch.web.views.search as desk

    original = desk.PAGE_SIZE
    desk.PAGE_SIZE = 2
    try:
        first = client.get("/search?q=twitter")
        assert 'rel="next"' in first.text and "Results 1–2" in first.text
        following = re.search(r'<a href="([^"]+)" rel="next">', first.text)
        assert following
        second = client.get(following.group(1).replace("&amp;", "&"))
        assert "Results 3–3" in second.text and 'rel="prev"' in second.text
    finally:
        desk.PAGE_SIZE = original


def _csv(reply: Any) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(reply.body.decode("utf-8"))))


def test_export_downloads_the_filtered_list(client: Client, world: World) -> None:
    page = client.get("/?status=all&flag=conflict")
    link = re.search(r'<a href="(/export\?format=csv[^"]*)" download>CSV</a>', page.text)
    assert link, page.text
    reply = client.get(link.group(1).replace("&amp;", "&"))
    assert reply.status == 200 and reply.header("Content-Type") == "text/csv; charset=utf-8"
    assert reply.header("Content-Disposition", ).startswith("attachment; filename=")
    rows = _csv(reply)
    assert {int(r["article_id"]) for r in rows} == {world.ids["original"]}
    assert {r["claim_id"] for r in rows} == {"staff-25", "engineers-half"}
    everything = _csv(client.get(f"/export?format=csv&topic={TOPIC}"))
    hostile = [r for r in everything if int(r["article_id"]) == world.ids["hostile"]]
    assert hostile and hostile[0]["title"].startswith("<script>")  # data kept, as text
    lines = client.get("/export?format=jsonl&claim=engineers-half").body.decode().splitlines()
    assert {json.loads(line)["id"] for line in lines} == {world.ids["original"],
                                                          world.ids["other"]}


def test_export_rejects_bad_parameters(client: Client) -> None:
    for url in ["/export?format=xlsx", "/export?format=csv&since=soon",
                "/export?format=csv&status=maybe", "/export?format=csv&ids=1,x",
                "/export?format=csv&ids=99999999999999999999999", "/export?format=csv&flag=x"]:
        reply = client.get(url)
        assert reply.status == 400, url
        assert "Traceback" not in reply.text


def test_search_results_download(client: Client, world: World) -> None:
    page = client.get("/search?q=twitter+staff")
    link = re.search(r'<a href="(/export\?format=jsonl[^"]*)" download>', page.text)
    assert link
    lines = client.get(link.group(1).replace("&amp;", "&")).body.decode().splitlines()
    assert {json.loads(line)["id"] for line in lines} == {
        int(i) for i in re.findall(r'id="hit-(\d+)"', page.text)}


def test_claim_timeline_marks_first_report_copies_and_conflicts(client: Client,
                                                                 world: World) -> None:
    claims = client.get(f"/claims?topic={TOPIC}")
    assert f'href="/claim/staff-25?topic={TOPIC}"' in claims.text
    reply = client.get(f"/claim/staff-25?topic={TOPIC}")
    assert reply.status == 200
    assert '<svg class="chart timeline"' in reply.text
    assert "3 article(s) in 3 outlet(s)" in reply.text
    assert "1 first report, 1 copy, 1 report" in reply.text
    assert_inert_with_charts(reply.text)
    assert 'Evil&#34; onmouseover' in reply.text  # the hostile outlet, as text in the lane
    data = client.get("/claim/staff-25.json").json()
    kinds = {p["article_id"]: p["kind"] for p in data["timeline"]}
    assert kinds == {world.ids["original"]: "first_report", world.ids["copy"]: "copy",
                     world.ids["hostile"]: "report"}
    conflict = client.get(f"/claim/engineers-half.json?topic={TOPIC}").json()
    assert {p["kind"] for p in conflict["timeline"]} == {"conflict", "first_report"}
    unused = client.get("/claim/never-repeated")
    assert unused.status == 200 and "No stored article carries this claim yet" in unused.text
    assert client.get("/claim/no-such-claim").status == 404
    assert client.get("/claim/" + "x" * 300).status == 404


def test_topic_page_draws_articles_per_day(client: Client, world: World) -> None:
    reply = client.get(f"/topic/{TOPIC}")
    assert reply.status == 200 and '<svg class="chart daily"' in reply.text
    table = reply.text.split('<table class="daily-table">')[1]
    rows = re.findall(r"<tr><td>([\d-]+)</td><td class=num>(\d+)</td><td class=num>(\d+)</td>"
                      r"<td class=num>(\d+)</td><td class=num>(\d+)</td></tr>", table)
    assert rows == [("2022-12-15", "1", "1", "1", "1"), ("2022-12-17", "1", "0", "0", "0"),
                    ("2022-12-18", "1", "0", "0", "1")]
    assert_inert_with_charts(reply.text)
    assert client.get("/topic/nope").status == 404
    assert client.get(f"/topic/{TOPIC}?days=99999999999999999999").status == 200


def _csrf(client: Client) -> str:
    page = client.get("/")
    return re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)


def test_bulk_review_and_undo_without_javascript(client: Client, world: World) -> None:
    csrf = _csrf(client)
    ids = [world.ids["original"], world.ids["other"]]
    page = client.get("/")
    assert '<form id="bulk"' in page.text and 'form="bulk" name="ids"' in page.text
    done = client.post("/articles/review", {"csrf": csrf, "status": "dismissed",
                                             "ids": str(ids[0])},)
    assert done.status == 303
    body = "&".join([f"csrf={csrf}", "status=reviewed"] + [f"ids={i}" for i in ids])
    done = client.request("POST", "/articles/review", body=body.encode(),
                          headers={"Accept": "application/json"})
    assert done.status == 200 and done.json()["article_ids"] == ids
    listed = client.get("/")
    assert "2 articles marked reviewed" in listed.text and 'class="undo"' in listed.text
    assert not {f'id="article-{i}"' for i in ids} & set(re.findall(r'id="article-\d+"',
                                                                    listed.text))
    undone = client.post("/undo", {"csrf": csrf}, headers={"Accept": "application/json"})
    assert undone.status == 200 and sorted(undone.json()["article_ids"]) == sorted(ids)
    with_status = client.get("/?status=all").text
    assert "state-dismissed" in with_status  # the first went back to dismissed, not open
    again = client.post("/undo", {"csrf": csrf}, headers={"Accept": "application/json"})
    assert again.status == 409 and "nothing to undo" in again.json()["message"]
    empty = client.post("/articles/review", {"csrf": csrf, "status": "reviewed"},
                        headers={"Accept": "application/json"})
    assert empty.status == 400 and "select at least one" in empty.json()["message"]
    bad = client.post("/articles/review", {"csrf": csrf, "status": "gone", "ids": str(ids[0])},
                      headers={"Accept": "application/json"})
    assert bad.status == 400


def test_undo_of_a_match_decision(client: Client, world: World) -> None:
    csrf = _csrf(client)
    aid = world.ids["original"]
    client.post(f"/article/{aid}/match", {"csrf": csrf, "claim_id": "staff-25",
                                          "decision": "reject"})
    assert "match-rejected" in client.get(f"/article/{aid}").text
    client.post("/undo", {"csrf": csrf})
    page = client.get(f"/article/{aid}").text
    assert "match-rejected" not in page
    assert "undo: match open" in page.split('id="history"')[1]


def test_buttons_have_distinct_accessible_names(client: Client) -> None:
    page = client.get("/?status=all").text
    labels = re.findall(r'<button [^>]*aria-label="([^"]+)"', page)
    assert len(labels) >= 8 and len(labels) == len(set(labels))
    assert client.get("/static/review.js").header("Content-Type").startswith("text/javascript")
    assert "script-src 'self'" in client.get("/").header("Content-Security-Policy")


def test_list_filters_articles_that_dispute_a_claim(client: Client, world: World) -> None:
    from storage.repository import ArticleRecord, MatchRecord, Store

    engine, sessions = open_db(world.db_url)
    try:
        aid = Store(sessions).save(ArticleRecord(
            topic=TOPIC, source="wire", url="https://rebut.example/1",
            canonical_url="https://rebut.example/1", title="Twitter disputes the figure",
            outlet="Rebuttal Daily", text="Twitter said it is false that 25 of 1,600 remain.",
            content_hash="h-rebut", matches=[MatchRecord(
                "staff-25", "Twitter said it is false that 25 of 1,600 remain.", 0, 90.0,
                "linked", stance="disputes")])).id
    finally:
        engine.dispose()
    page = client.get("/?status=all&flag=disputes")
    assert re.findall(r'<article class="item" id="article-(\d+)"', page.text) == [str(aid)]
    assert "disputes a claim" in page.text
    data = client.get("/articles.json?status=all&flag=disputes").json()
    assert [a["id"] for a in data["articles"]] == [aid]
    assert data["articles"][0]["claims"][0]["stance"] == "disputes"
