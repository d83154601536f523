"""The review pages of the web app (claimwatch/web/), in process: a WSGI client with a cookie jar."""

from __future__ import annotations

import io
import json
import re
import subprocess
import sys
import urllib.request
from html.parser import HTMLParser
from http.cookies import SimpleCookie
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

import pytest
from sqlalchemy import select

from claimwatch.web import (
    CrawlRefused,
    WebConfigError,
    check_binding,
    is_loopback,
    make_app,
    parse_listen,
    suggest_claim_id,
)
from config.loader import load_claims
from storage.db import open_db
from storage.models import Article, ArticleClaim, ClaimCandidate, KnownClaim
from tests.review_fixtures import TOPIC, XSS_CANDIDATE, XSS_SENTENCE, XSS_TITLE, World

REPO = Path(__file__).resolve().parents[1]
TOKEN = "t0ken-for-the-review-page-tests"


class Reply:
    def __init__(self, status: str, headers: list[tuple[str, str]], body: bytes) -> None:
        self.status = int(status.split()[0])
        self.headers = headers
        self.body = body

    def header(self, name: str) -> str | None:
        for key, value in self.headers:
            if key.lower() == name.lower():
                return value
        return None

    @property
    def text(self) -> str:
        return self.body.decode("utf-8")

    def json(self) -> Any:
        return json.loads(self.body)


class Client:
    """Calls the WSGI app directly; keeps cookies like a browser (per path, no expiry)."""

    def __init__(self, app: Any, remote: str = "127.0.0.1", host: str = "127.0.0.1:8750") -> None:
        self.app = app
        self.remote = remote
        self.host = host
        self.cookies: dict[str, str] = {}

    def request(self, method: str, url: str, data: dict[str, str] | None = None,
                headers: dict[str, str] | None = None, body: bytes | None = None) -> Reply:
        parts = urlsplit(url)
        if body is None:
            body = urlencode(data or {}).encode() if method == "POST" else b""
        environ: dict[str, Any] = {
            "REQUEST_METHOD": method, "PATH_INFO": parts.path, "QUERY_STRING": parts.query,
            "SCRIPT_NAME": "", "SERVER_NAME": "127.0.0.1", "SERVER_PORT": "8750",
            "SERVER_PROTOCOL": "HTTP/1.1", "REMOTE_ADDR": self.remote, "HTTP_HOST": self.host,
            "wsgi.input": io.BytesIO(body), "wsgi.url_scheme": "http",
            "wsgi.errors": io.StringIO(), "CONTENT_LENGTH": str(len(body)),
            "CONTENT_TYPE": "application/x-www-form-urlencoded" if method == "POST" else "",
        }
        if self.cookies:
            environ["HTTP_COOKIE"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        for key, value in (headers or {}).items():
            name = key.upper().replace("-", "_")
            environ[name if name in ("CONTENT_TYPE",) else "HTTP_" + name] = value
        captured: dict[str, Any] = {}

        def start_response(status: str, response_headers: list[tuple[str, str]]) -> None:
            captured["status"], captured["headers"] = status, response_headers

        out = b"".join(self.app(environ, start_response))
        reply = Reply(captured["status"], captured["headers"], out)
        for key, value in reply.headers:
            if key.lower() == "set-cookie":
                jar: SimpleCookie = SimpleCookie()
                jar.load(value)
                for name, morsel in jar.items():
                    self.cookies[name] = morsel.value
        return reply

    def get(self, url: str, **kwargs: Any) -> Reply:
        return self.request("GET", url, **kwargs)

    def post(self, url: str, data: dict[str, str] | None = None, **kwargs: Any) -> Reply:
        return self.request("POST", url, data, **kwargs)

    def csrf(self, page: str = "/") -> str:
        reply = self.get(page)
        match = re.search(r'name="csrf" value="([^"]+)"', reply.text)
        assert match, reply.text[:500]
        return match.group(1)


class Tags(HTMLParser):
    """Every element and attribute of a page, to prove no payload became markup."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def parse(html: str) -> Tags:
    tags = Tags()
    tags.feed(html)
    tags.close()
    return tags


OUR_SCRIPT = ("script", {"src": "/static/review.js", "defer": None})


def assert_inert(html: str) -> Tags:
    """No active content but the page's own script file (static/review.js)."""
    tags = parse(html)
    tags.tags = [t for t in tags.tags if t != OUR_SCRIPT]
    names = {t for t, _ in tags.tags}
    assert not names & {"script", "img", "svg", "iframe", "object", "embed", "b"}, names
    for tag, attrs in tags.tags:
        for name, value in attrs.items():
            assert not name.startswith("on"), (tag, attrs)
            if name in ("href", "src", "action"):
                assert not (value or "").strip().lower().startswith("javascript:"), (tag, attrs)
    return tags


class Trigger:
    def __init__(self, refuse: str | None = None, result: Any = "run 7 started") -> None:
        self.calls: list[tuple[str, str]] = []
        self.refuse = refuse
        self.result = result

    def __call__(self, topic: str, source: str) -> Any:
        self.calls.append((topic, source))
        if self.refuse:
            raise CrawlRefused(self.refuse)
        return self.result


@pytest.fixture
def trigger() -> Trigger:
    return Trigger()


@pytest.fixture
def client(world: World, sessions: Any, trigger: Trigger) -> Client:
    """The review page with a crawl trigger (conftest's ``client`` has none)."""
    return Client(make_app(sessions, [world.topic], trigger_crawl=trigger))


def article_cards(html: str) -> list[int]:
    return [int(x) for x in re.findall(r'<article class="item" id="article-(\d+)"', html)]


# -- pages ------------------------------------------------------------------------------------


def test_list_shows_open_articles_with_filters(client: Client, world: World) -> None:
    reply = client.get("/")
    assert reply.status == 200
    assert reply.header("Content-Type") == "text/html; charset=utf-8"
    ids = world.ids
    # newest first
    assert article_cards(reply.text) == [ids["hostile"], ids["other"], ids["copy"],
                                         ids["original"]]
    assert "4 open articles" in reply.text
    assert "carried by 2 outlets (1 copy)" in reply.text
    assert f'copy of <a href="/article/{ids["original"]}">#{ids["original"]}</a>' in reply.text

    assert article_cards(client.get("/?flag=conflict").text) == [ids["original"]]
    assert article_cards(client.get("/?flag=duplicate").text) == [ids["copy"]]
    assert article_cards(client.get("/?claim=engineers-half").text) == [ids["other"],
                                                                        ids["original"]]
    assert article_cards(client.get(f"/?topic={TOPIC}&since=2000-01-01").text) != []
    assert article_cards(client.get("/?topic=another").text) == []
    assert article_cards(client.get("/?status=reviewed").text) == []
    bad = client.get("/?since=yesterday")
    assert bad.status == 200 and "since &#39;yesterday&#39; is neither" in bad.text


def test_mark_reviewed_from_the_list_removes_it(client: Client, world: World,
                                                sessions: Any) -> None:
    token = client.csrf("/")
    aid = world.ids["other"]
    listed = client.get("/?status=open&flag=new_report").text
    assert 'name="next" value="/?status=open&amp;flag=new_report"' in listed  # back here
    reply = client.post(f"/article/{aid}/review",
                        {"csrf": token, "status": "reviewed", "next": "/?status=open"})
    assert reply.status == 303
    assert reply.header("Location") == "/?status=open"
    page = client.get("/?status=open")
    assert aid not in article_cards(page.text)
    assert f"#{aid} Advertisers pause Twitter spending marked reviewed" in page.text
    assert "flash" in page.text and "3 open articles" in page.text
    again = client.get("/").text  # the message shows once (the undo bar stays)
    assert not re.findall(r'<p class="flash[^>]*>[^<]*marked reviewed', again)
    assert article_cards(client.get("/?status=reviewed").text) == [aid]
    with sessions() as session:
        assert session.get(Article, aid).review_status == "reviewed"
    # and it left the digest
    digest = client.get("/digest?format=json&since=2000-01-01").json()
    assert aid not in [a["id"] for a in digest["articles"]]
    assert aid in [a["id"] for a in client.get("/digest?format=json&since=2000-01-01&all=1")
                   .json()["articles"]]


def test_article_page(client: Client, world: World) -> None:
    aid = world.ids["original"]
    reply = client.get(f"/article/{aid}")
    assert reply.status == 200
    html = reply.text
    tags = parse(html)
    marks = [(a.get("class"), a.get("title")) for t, a in tags.tags if t == "mark"]
    assert ("hl-claim", "staff-25") in marks
    assert ("hl-conflict", "engineers-half") in marks
    assert ("hl-candidate", "new claim candidate") in marks
    assert '<mark class="hl-claim" title="staff-25">Twitter has only 25 of 1,600 staff' in html
    assert "Figures differ: claim half · article third" in html
    # its copy, with a link, and the claim's known text
    assert f'href="/article/{world.ids["copy"]}"' in html and "The Capital Ledger" in html
    assert "Carried by 2 outlets; 1 copy" in html
    assert "25 of the 1,600 workers still employed by Twitter" in html
    # actions: review, confirm/reject per match, promote the candidate
    forms = [a["action"] for t, a in tags.tags if t == "form" and a.get("method") == "post"]
    assert f"/article/{aid}/review" in forms
    assert forms.count(f"/article/{aid}/match") == 2
    assert f"/candidate/{world.candidate_ids['original']}/promote" in forms
    assert 'value="a-new-child-safety-council-will"' in html  # suggested claim id

    copy_page = client.get(f"/article/{world.ids['copy']}").text
    assert f'of the original <a href="/article/{aid}">#{aid}' in copy_page
    assert "similarity 0.98" in copy_page

    assert client.get("/article/999").status == 404
    data = client.get(f"/article/{aid}.json").json()
    assert data["id"] == aid and data["copies"][0]["id"] == world.ids["copy"]
    assert {c["claim_id"] for c in data["all_claims"]} == {"staff-25", "engineers-half"}


def test_claims_page_has_coverage(client: Client) -> None:
    html = client.get("/claims").text
    row = re.search(r'<tr id="claim-staff-25">(.*?)</tr>', html).group(1)  # type: ignore[union-attr]
    cells = [re.sub("<[^>]+>", "", c) for c in re.findall(r"<td[^>]*>(.*?)</td>", row)]
    # articles, outlets, outlets repeating it, outlets disputing it, conflicts, first, last
    assert cells[2:] == ["3", "3", "3", "0", "0", "2022-12-15 10:00 UTC", "2022-12-18 10:00 UTC"]
    assert "claim=staff-25" in row
    never = re.search(r'<tr id="claim-never-repeated">(.*?)</tr>', html).group(1)  # type: ignore[union-attr]
    assert "<td class=num>0</td>" in never
    data = client.get("/claims.json").json()["claims"]
    assert [c["claim_id"] for c in data] == ["staff-25", "engineers-half", "never-repeated"]


def test_sources_page_and_crawl_now(client: Client, trigger: Trigger) -> None:
    html = client.get("/sources").text
    assert html.count(">Crawl now</button>") == 2
    assert "feed &lt;b&gt;unreachable&lt;/b&gt;" in html  # the run's error, escaped
    assert "fetched 4, new 4, duplicates 1, errors 0" in html
    token = client.csrf("/sources")
    reply = client.post("/crawl", {"csrf": token, "topic": TOPIC, "source": "ledger",
                                   "next": "/sources"})
    assert reply.status == 303 and reply.header("Location") == "/sources"
    assert trigger.calls == [(TOPIC, "ledger")]
    assert f"crawl of {TOPIC}/ledger: run 7 started" in client.get("/sources").text

    unknown = client.post("/crawl", {"csrf": token, "topic": TOPIC, "source": "nope"},
                          headers={"Accept": "application/json"})
    assert unknown.status == 404 and "no source 'nope'" in unknown.json()["error"]
    assert trigger.calls == [(TOPIC, "ledger")]
    runs = client.get("/runs.json").json()["runs"]
    assert [r["source"] for r in runs] == ["ledger", "wire"]


def test_crawl_now_refused_or_unavailable(world: World, sessions: Any) -> None:
    busy = Client(make_app(sessions, [world.topic], trigger_crawl=Trigger(refuse="busy now")))
    token = busy.csrf("/sources")
    reply = busy.post("/crawl", {"csrf": token, "topic": TOPIC, "source": "wire"},
                      headers={"Accept": "application/json"})
    assert (reply.status, reply.json()["error"]) == (409, "busy now")

    daemon_style = Client(make_app(sessions, [world.topic], trigger_crawl=Trigger(
        result={"runs": [], "error": "source 'wire' is being crawled already"})))
    token = daemon_style.csrf("/sources")
    reply = daemon_style.post("/crawl", {"csrf": token, "topic": TOPIC, "source": "wire"},
                              headers={"Accept": "application/json"})
    assert (reply.status, reply.json()["error"]) == (409, "source 'wire' is being crawled "
                                                          "already")

    alone = Client(make_app(sessions, [world.topic]))
    assert '<button disabled title="not available here">Crawl now</button>' in \
        alone.get("/sources").text
    token = alone.csrf("/")
    reply = alone.post("/crawl", {"csrf": token, "topic": TOPIC, "source": "wire"},
                       headers={"Accept": "application/json"})
    assert reply.status == 503 and "not available here" in reply.json()["error"]


def test_match_decisions_and_candidate_rejection(client: Client, world: World,
                                                 sessions: Any) -> None:
    aid = world.ids["original"]
    token = client.csrf(f"/article/{aid}")
    reply = client.post(f"/article/{aid}/match", {"csrf": token, "claim_id": "engineers-half",
                                                  "decision": "reject"})
    assert reply.status == 303 and reply.header("Location") == f"/article/{aid}"
    page = client.get(f"/article/{aid}").text
    assert "match of #" in page and "engineers-half: rejected" in page
    assert '<mark class="hl-conflict" title' not in page  # rejected: not highlighted
    with sessions() as session:
        assert session.scalar(select(ArticleClaim.review).where(
            ArticleClaim.article_id == aid, ArticleClaim.claim_id == "engineers-half")) \
            == "rejected"
    bad = client.post(f"/article/{aid}/match", {"csrf": token, "claim_id": "nope",
                                                "decision": "confirm"},
                      headers={"Accept": "application/json"})
    assert bad.status == 400 and "has no match to claim 'nope'" in bad.json()["error"]

    cid = world.candidate_ids["hostile"]
    reply = client.post(f"/candidate/{cid}/decide", {"csrf": token, "decision": "reject"},
                        headers={"Accept": "application/json"})
    assert reply.json() == {"ok": True, "message": f"candidate {cid}: rejected",
                            "candidate_id": cid, "status": "rejected"}


def test_promote_from_the_page(client: Client, world: World, sessions: Any) -> None:
    aid, cid = world.ids["original"], world.candidate_ids["original"]
    token = client.csrf(f"/article/{aid}")
    reply = client.post(f"/candidate/{cid}/promote", {
        "csrf": token, "new_id": "council-in-january",
        "text": "A child-safety council meets in January.", "next": f"/article/{aid}"})
    assert reply.status == 303
    page = client.get(f"/article/{aid}").text
    assert f"new claim council-in-january added to {world.claims_file}" in page
    assert "promoted as <code>council-in-january</code>" in page
    assert load_claims(world.claims_file)[-1].text == "A child-safety council meets in January."
    with sessions() as session:
        assert session.scalar(select(KnownClaim.text).where(
            KnownClaim.claim_id == "council-in-january")) == \
            "A child-safety council meets in January."
        # the wire copy's identical candidate was promoted with it
        assert session.get(ClaimCandidate, world.candidate_ids["copy"]).status == "promoted"
    assert "council-in-january" in client.get("/claims").text

    before = world.claims_file.read_bytes()
    dup = client.post(f"/candidate/{world.candidate_ids['hostile']}/promote",
                      {"csrf": token, "new_id": "staff-25"},
                      headers={"Accept": "application/json"})
    assert dup.status == 400 and "already has a claim 'staff-25'" in dup.json()["error"]
    assert world.claims_file.read_bytes() == before


def test_promote_needs_the_topic_file(world: World, sessions: Any) -> None:
    client = Client(make_app(sessions, []))
    aid, cid = world.ids["original"], world.candidate_ids["original"]
    assert "serve the page with the topic file of review-test" in \
        client.get(f"/article/{aid}").text
    token = client.csrf()
    reply = client.post(f"/candidate/{cid}/promote", {"csrf": token, "new_id": "x-y"},
                        headers={"Accept": "application/json"})
    assert reply.status == 409 and "was not loaded here" in reply.json()["error"]


def test_digest_in_every_format(client: Client) -> None:
    expected = {"html": "text/html", "text": "text/plain", "md": "text/plain",
                "json": "application/json", "atom": "application/atom+xml"}
    for fmt, ctype in expected.items():
        reply = client.get(f"/digest?format={fmt}&since=2000-01-01")
        assert reply.status == 200, fmt
        assert reply.header("Content-Type") == f"{ctype}; charset=utf-8"
        assert "Advertisers pause Twitter spending" in reply.text, fmt
    html = client.get("/digest?since=2000-01-01")
    assert "script-src" not in html.header("Content-Security-Policy")  # default-src 'none'
    assert html.header("Content-Security-Policy").startswith("default-src 'none'")
    assert_inert(html.text)
    assert client.get("/digest?format=pdf").status == 400
    assert client.get("/digest?since=later").status == 400


# -- security ---------------------------------------------------------------------------------


def test_scraped_payloads_are_escaped_everywhere(client: Client, world: World) -> None:
    hostile = world.ids["hostile"]
    for url in ("/", "/?status=all", f"/article/{hostile}", "/claims", "/sources",
                "/?claim=<script>x()</script>"):
        reply = client.get(url)
        assert reply.status == 200, url
        tags = assert_inert(reply.text)
        if url == f"/article/{hostile}":
            text = "".join(tags.text)
            assert XSS_TITLE in text  # shown as text, character for character
            assert XSS_SENTENCE in text and XSS_CANDIDATE in text
            assert "</p></main><script>x()</script>" in text
            # the javascript: URL is shown, not linked
            hrefs = [a.get("href") for t, a in tags.tags if t == "a"]
            assert not any("pwned" in (h or "") for h in hrefs)
    page = client.get(f"/article/{hostile}").text
    assert "&lt;script&gt;window.__pwned" in page
    assert 'Evil&#34; onmouseover=&#34;window.__pwned=2' in page


def test_security_headers(client: Client) -> None:
    reply = client.get("/")
    csp = reply.header("Content-Security-Policy")
    assert "script-src 'self';" in csp and "default-src 'self'" in csp
    assert "unsafe-inline" not in csp.split("style-src")[0]  # no inline script, ever
    assert "frame-ancestors 'none'" in csp and "form-action 'self'" in csp
    assert reply.header("X-Content-Type-Options") == "nosniff"
    assert reply.header("Referrer-Policy") == "no-referrer"
    cookie = reply.header("Set-Cookie")
    assert cookie and "HttpOnly" in cookie and "SameSite=Strict" in cookie
    assert " style=" not in reply.text
    assert reply.text.count("<script") == 1  # our file only, no inline script
    assert '<script src="/static/review.js" defer></script>' in reply.text
    css = client.get("/static/review.css")
    assert css.status == 200 and css.header("Content-Type") == "text/css; charset=utf-8"


def test_posts_need_a_valid_csrf_token(client: Client, world: World, sessions: Any) -> None:
    aid = world.ids["other"]

    def status() -> str:
        with sessions() as session:
            return session.get(Article, aid).review_status

    url = f"/article/{aid}/review"
    fresh = Client(client.app)
    assert fresh.post(url, {"status": "reviewed"}).status == 403  # no cookie, no token
    # the token lives in Flask's signed session cookie: HttpOnly, SameSite=Strict, and
    # Secure only over https
    page = Client(client.app).get("/")
    form_cookie = next(v for k, v in page.headers
                       if k.lower() == "set-cookie" and v.startswith("cw_form="))
    assert "HttpOnly" in form_cookie and "SameSite=Strict" in form_cookie
    assert "Secure" not in form_cookie
    token = client.csrf()
    assert client.post(url, {"status": "reviewed"}).status == 403  # cookie, no token
    assert client.post(url, {"status": "reviewed", "csrf": "0" * 64}).status == 403
    other = Client(client.app)
    other.csrf()
    assert other.post(url, {"status": "reviewed", "csrf": token}).status == 403  # not its token
    cross = client.post(url, {"status": "reviewed", "csrf": token},
                        headers={"Origin": "http://evil.example"})
    assert cross.status == 403 and "cross-origin" in cross.text
    assert status() == "open"
    # the token also works as a header, and the same origin is fine
    ok = client.post(url, {"status": "reviewed"},
                     headers={"X-CSRF-Token": token, "Origin": "http://127.0.0.1:8750"})
    assert ok.status == 303 and status() == "reviewed"
    # another process (another secret) does not accept this one's tokens
    restarted = Client(make_app(sessions, [world.topic]))
    restarted.cookies = dict(client.cookies)
    assert restarted.post(url, {"status": "open", "csrf": token}).status == 403
    # scripts: /session.json gives the token for the session cookie
    script = Client(client.app)
    csrf = script.get("/session.json").json()["csrf"]
    reply = script.request("POST", url, headers={"Content-Type": "application/json",
                                                 "Accept": "application/json",
                                                 "X-CSRF-Token": csrf},
                           body=json.dumps({"status": "dismissed", "note": "via json"}).encode())
    assert reply.status == 200 and reply.json()["status"] == "dismissed"
    assert client.get("/article/0/review").status == 405


def test_redirects_stay_on_this_site(client: Client, world: World) -> None:
    token = client.csrf()
    url = f"/article/{world.ids['other']}/review"
    for bad in ("//evil.example/x", "https://evil.example/", "/\\evil.example", "javascript:x"):
        reply = client.post(url, {"csrf": token, "status": "open", "next": bad})
        assert reply.header("Location") == f"/article/{world.ids['other']}", bad


def test_loopback_only_without_a_token(world: World, sessions: Any) -> None:
    app = make_app(sessions, [world.topic])
    assert Client(app, remote="10.1.2.3").get("/").status == 403
    assert Client(app, host="evil.example:8750").get("/").status == 403  # DNS rebinding
    assert Client(app, host="localhost:8750").get("/").status == 200
    assert Client(app, remote="::1", host="[::1]:8750").get("/").status == 200


def test_token_mode(world: World, sessions: Any) -> None:
    app = make_app(sessions, [world.topic], token=TOKEN)
    anonymous = Client(app, remote="192.0.2.7", host="review.example:8750")
    reply = anonymous.get("/")
    assert reply.status == 401 and "needs its access token" in reply.text
    assert world.ids["other"] not in article_cards(reply.text)
    assert anonymous.get("/?token=wrong-token-wrong-token").status == 401
    assert anonymous.get("/articles.json").status == 401

    browser = Client(app, remote="192.0.2.7", host="review.example:8750")
    first = browser.get("/?token=" + TOKEN + "&status=all")
    assert first.status == 303 and first.header("Location") == "/?status=all"  # token dropped
    assert "SameSite=Lax" in first.header("Set-Cookie") and TOKEN not in first.header(
        "Set-Cookie")
    assert browser.get("/?status=all").status == 200  # the cookie is enough now
    token = browser.csrf()
    assert browser.post(f"/article/{world.ids['other']}/review",
                        {"csrf": token, "status": "reviewed"}).status == 303

    api = Client(app, remote="192.0.2.8", host="review.example:8750")
    bearer = {"Authorization": f"Bearer {TOKEN}", "Accept": "application/json"}
    assert api.get("/articles.json", headers=bearer).json()["count"] == 3
    # a bearer header is never sent by a browser on its own: no CSRF token needed
    reply = api.post(f"/article/{world.ids['copy']}/review", {"status": "dismissed"},
                     headers=bearer)
    assert reply.status == 200 and reply.json()["status"] == "dismissed"
    assert api.post(f"/article/{world.ids['copy']}/review", {"status": "open"},
                    headers={"Authorization": "Bearer nope"}).status == 401


def test_binding_rules() -> None:
    assert parse_listen("127.0.0.1:8750") == ("127.0.0.1", 8750)
    assert parse_listen("[::1]:9000") == ("::1", 9000)
    assert parse_listen("8751") == ("127.0.0.1", 8751)
    assert parse_listen("0.0.0.0:0") == ("0.0.0.0", 0)
    for bad in ("localhost", "host:port", "1.2.3.4:70000", "[::1]"):
        with pytest.raises(WebConfigError):
            parse_listen(bad)
    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("localhost")
    assert is_loopback("127.3.4.5") and is_loopback("[::1]")
    assert not is_loopback("0.0.0.0") and not is_loopback("192.168.1.2")
    assert not is_loopback("localhost.evil.example")
    check_binding("127.0.0.1", None)
    check_binding("0.0.0.0", TOKEN)
    with pytest.raises(WebConfigError, match="without an access token"):
        check_binding("0.0.0.0", None)
    with pytest.raises(WebConfigError, match="at least 16"):
        check_binding("0.0.0.0", "short")
    assert suggest_claim_id("Twitter’s 25 staff, of 1,600 in all!") == \
        "twitters-25-staff-of-1600-in"
    assert suggest_claim_id("«»") == "new-claim"


# -- claimwatch serve, for real ---------------------------------------------------------------


def test_serve_command_serves_the_page_and_stops_on_sigterm(world: World) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "claimwatch.cli", "serve", str(world.topic_file),
         "--listen", "127.0.0.1:0", "--db", world.db_url],
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        match = re.search(r"review page at (http://127\.0\.0\.1:\d+/)", line)
        assert match, line + (proc.stderr.read() if proc.stderr else "")
        with urllib.request.urlopen(match.group(1) + "?status=all", timeout=10) as response:
            html = response.read().decode()
            assert response.headers["Content-Security-Policy"].startswith("default-src 'self'")
        assert "Advertisers pause Twitter spending" in html
        proc.terminate()
        out, err = proc.communicate(timeout=15)
        assert proc.returncode == 0, err
        assert "stopping" in out
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()


# -- mounted next to the daemon's JSON API ----------------------------------------------------


def test_one_app_serves_the_daemons_api_and_the_pages(world: World, sessions: Any) -> None:
    class Control:
        def __init__(self) -> None:
            self.sessions = sessions
            self.triggered: list[tuple[str | None, str | None]] = []

        def trigger(self, topic: str | None, source: str | None) -> dict[str, Any]:
            self.triggered.append((topic, source))
            return {"runs": [{"id": 41, "topic": topic, "source": source}]}

        def health(self) -> dict[str, Any]:
            return {"status": "ok"}

    control = Control()
    # As claimwatch/daemon.py does: one app, the daemon its control and crawl trigger.
    client = Client(make_app(sessions, [world.topic], trigger_crawl=control.trigger,
                             control=control))
    assert [r["source"] for r in client.get("/api/runs").json()["runs"]] == ["ledger", "wire"]
    assert client.get("/api/health").json()["status"] == "ok"
    token = client.csrf("/sources")
    reply = client.post("/crawl", {"csrf": token, "topic": TOPIC, "source": "wire"})
    assert reply.status == 303
    assert control.triggered == [(TOPIC, "wire")]
    assert f"crawl of {TOPIC}/wire started: run 41" in client.get("/sources").text
    # the daemon's own wrapper returns a sentence
    daemon_style = Client(make_app(sessions, [world.topic],
                                   trigger_crawl=lambda t, s: "crawl run 42 started"))
    token = daemon_style.csrf("/sources")
    daemon_style.post("/crawl", {"csrf": token, "topic": TOPIC, "source": "wire"})
    assert f"crawl of {TOPIC}/wire: crawl run 42 started" in daemon_style.get("/sources").text


# -- the real demo: one crawl, every digest format --------------------------------------------


def test_demo_digest_renders_in_every_format(tmp_path: Path) -> None:
    from xml.etree import ElementTree

    db = f"sqlite:///{tmp_path / 'demo.sqlite'}"
    cli = [sys.executable, "-m", "claimwatch.cli"]
    crawl = subprocess.run([*cli, "crawl", str(REPO / "config/topics/demo.yaml"), "--db", db,
                            "--set", "CLAIMWATCH_SITE_PORT=0"],
                           cwd=REPO, capture_output=True, text=True, timeout=120)
    assert crawl.returncode == 0, crawl.stdout + crawl.stderr
    engine, sessions = open_db(db)
    try:
        client = Client(make_app(sessions, []))
        data = client.get("/digest?format=json&since=30d").json()
        titles = [a["title"] for a in data["articles"]]
        assert len(titles) >= 8
        originals = [a for a in data["articles"] if a["duplicate_of"] is None]
        for fmt in ("text", "md", "html", "atom"):
            body = client.get(f"/digest?format={fmt}&since=30d").text
            assert "carried by" in body.lower(), fmt  # copies folded under their original
            assert "Conflicting figures" in body or fmt == "atom", fmt
        assert_inert(client.get("/digest?format=html&since=30d").text)
        feed = ElementTree.fromstring(client.get("/digest?format=atom&since=30d").body)
        entries = feed.findall("{http://www.w3.org/2005/Atom}entry")
        assert 1 <= len(entries) <= len(originals)
        text = subprocess.run([*cli, "digest", "--db", db, "--since", "30d"], cwd=REPO,
                              capture_output=True, text=True, timeout=60)
        assert text.returncode == 0, text.stderr
        # readable at 100 columns (a long URL is kept whole so that it stays clickable)
        assert max(len(line) for line in text.stdout.splitlines() if "http" not in line) <= 100
        assert "Stories" in text.stdout
    finally:
        engine.dispose()


# -- pagination (issue 13): keyset pages, newest first, columns only --------------------------


def _save_many(sessions: Any, n: int, **extra: Any) -> list[int]:
    from datetime import timedelta

    from storage.models import utcnow
    from storage.repository import ArticleRecord, CandidateRecord, MatchRecord, Store

    store = Store(sessions)
    now = utcnow()
    ids = []
    for i in range(n):
        ids.append(store.save(ArticleRecord(
            topic=TOPIC, source="bulk", url=f"https://bulk.example/{i}",
            canonical_url=f"https://bulk.example/{i}", title=f"Bulk {i}", outlet="Bulk",
            # two articles share each fetch time: the pages must order (fetched_at, id)
            fetched_at=now - timedelta(days=2, minutes=n - i // 2), text=f"Bulk text {i}.",
            content_hash=f"bulk-{i}",
            matches=[MatchRecord("staff-25", f"Bulk text {i}.", 0, 90.0, "linked",
                                 conflict=i % 3 == 0)],
            candidates=[CandidateRecord(f"Bulk text {i}.", 0, 0.7)], **extra,
        )).id)
    return ids


def _pages(client: Client, first: str) -> tuple[list[int], int]:
    seen, url, pages = [], first, 0
    while url:
        reply = client.get(url)
        assert reply.status == 200
        pages += 1
        seen += article_cards(reply.text)
        found = re.search(r'<a href="([^"]+)" rel="next"', reply.text)
        url = found.group(1).replace("&amp;", "&") if found else ""
        assert pages < 20
    return seen, pages


def test_list_pages_newest_first_and_every_article_once(client: Client, world: World,
                                                        sessions: Any) -> None:
    from claimwatch.web.views.articles import PAGE_SIZE

    bulk = _save_many(sessions, 2 * PAGE_SIZE + 7)
    first = client.get("/")
    ids = world.ids
    fixture = [ids["hostile"], ids["other"], ids["copy"], ids["original"]]
    total = len(bulk) + 4
    assert f"{total} open articles; showing the newest {PAGE_SIZE}" in first.text
    assert len(article_cards(first.text)) == PAGE_SIZE
    seen, pages = _pages(client, "/")
    assert pages == 3
    # newest fetched first; equal fetch times newest id first
    assert seen == fixture + sorted(bulk, key=lambda i: (-(bulk.index(i) // 2), -i))
    # a filter and a page: the conflicting bulk articles, every one once
    conflicts, _ = _pages(client, f"/?topic={TOPIC}&flag=conflict")
    assert sorted(conflicts) == sorted([ids["original"]] + bulk[::3])
    assert "Older articles" not in client.get(f"/?topic={TOPIC}&flag=duplicate").text


def test_articles_json_pages_with_a_next_link(client: Client, world: World,
                                              sessions: Any) -> None:
    bulk = _save_many(sessions, 30)
    reply = client.get("/articles.json?limit=12&status=all").json()
    assert reply["count"] == 34 and len(reply["articles"]) == 12
    assert "text" not in reply["articles"][0]  # a list row carries no article text
    got = [a["id"] for a in reply["articles"]]
    while reply["next"]:
        assert "limit=12" in reply["next"]
        reply = client.get(reply["next"]).json()
        assert len(reply["articles"]) <= 12
        got += [a["id"] for a in reply["articles"]]
    assert sorted(got) == sorted(bulk + list(world.ids.values()))
    assert len(got) == len(set(got))
    assert client.get("/articles.json?limit=0").json()["articles"]  # clamped to 1..300


def test_claims_json_pages_by_claim(client: Client) -> None:
    whole = [c["claim_id"] for c in client.get("/claims.json").json()["claims"]]
    reply = client.get("/claims.json?limit=1").json()
    got, pages = [c["claim_id"] for c in reply["claims"]], 1
    while reply["next"]:
        reply = client.get(reply["next"]).json()
        got += [c["claim_id"] for c in reply["claims"]]
        pages += 1
    assert got == whole == ["staff-25", "engineers-half", "never-repeated"]
    assert pages == 3


def test_one_escaping_path() -> None:
    """Jinja's autoescape is the only way scraped text reaches HTML: no template marks a
    value safe, and no Python code of the web app builds markup."""
    web = REPO / "claimwatch" / "web"
    for template in (web / "templates").glob("*.html"):
        text = template.read_text(encoding="utf-8")
        assert "|safe" not in text.replace(" ", "") and "autoescape false" not in text, template
    for module in web.rglob("*.py"):
        text = module.read_text(encoding="utf-8")
        assert "Markup(" not in text and "html.escape" not in text, module


def test_errors_are_short_pages_or_json_without_a_traceback(world: World,
                                                            caplog: pytest.LogCaptureFixture
                                                            ) -> None:
    def broken() -> Any:
        raise RuntimeError("database exploded: secret detail")

    client = Client(make_app(broken, [world.topic]))
    page = client.get("/")
    assert page.status == 503 and page.header("Content-Type") == "text/html; charset=utf-8"
    assert "Traceback" not in page.text and "secret detail" not in page.text
    data = client.get("/api/v1/articles")
    assert data.status == 503 and set(data.json()) == {"error"}
    assert "secret detail" in caplog.text  # the log has it, the client does not
    for status, url in ((404, "/nowhere"), (405, "/undo"), (404, "/article/99999999999999999999")):
        reply = Client(make_app(lambda: None, [world.topic], token=TOKEN)).get(
            url, headers={"Authorization": f"Bearer {TOKEN}", "Accept": "application/json"})
        assert reply.status == status and "error" in reply.json(), url
