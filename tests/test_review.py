"""Review actions (claimwatch/review.py) and their CLI (claimwatch/cli/review.py)."""

from __future__ import annotations

import socket
from email import policy
from email.parser import BytesParser
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from click.testing import CliRunner
from sqlalchemy import select

from claimwatch.cli import main
from claimwatch.digest import build_digest
from claimwatch.review import (
    ReviewError,
    claim_coverage,
    decide_candidate,
    mark_article,
    promote_candidate,
    review_match,
)
from config.loader import load_claims
from storage.db import open_db
from storage.models import Article, ArticleClaim, ClaimCandidate, KnownClaim
from storage.repository import recount_claim
from tests.review_fixtures import CLAIMS_CSV, ORIGINAL_TEXT, TOPIC, World, make_world

EPOCH = "2000-01-01"


@pytest.fixture
def world(tmp_path: Path) -> World:
    return make_world(tmp_path)


@pytest.fixture
def sessions(world: World) -> Any:
    engine, factory = open_db(world.db_url)
    yield factory
    engine.dispose()


def digest_ids(sessions: Any, **kwargs: Any) -> list[int]:
    from claimwatch.digest import parse_since

    with sessions() as session:
        data = build_digest(session, since=parse_since(EPOCH), **kwargs)
    return [a["id"] for a in data["articles"]]


# -- mark -------------------------------------------------------------------------------------


def test_mark_reviewed_and_dismissed_leave_the_digest(world: World, sessions: Any) -> None:
    ids = world.ids
    assert set(digest_ids(sessions)) == set(ids.values())
    with sessions.begin() as session:
        mark_article(session, ids["other"], "reviewed", "  checked with the desk ")
        mark_article(session, ids["hostile"], "dismissed")
    assert set(digest_ids(sessions)) == {ids["original"], ids["copy"]}
    assert set(digest_ids(sessions, include_reviewed=True)) == set(ids.values())
    with sessions() as session:
        other = session.get(Article, ids["other"])
        assert (other.review_status, other.review_note) == ("reviewed", "checked with the desk")
    with sessions.begin() as session:  # reopen; None keeps the note, "" clears it
        mark_article(session, ids["other"], "open")
    with sessions() as session:
        assert session.get(Article, ids["other"]).review_note == "checked with the desk"
    with sessions.begin() as session:
        mark_article(session, ids["other"], "open", "")
    with sessions() as session:
        assert session.get(Article, ids["other"]).review_note is None
    assert ids["other"] in digest_ids(sessions)


def test_mark_with_copies(world: World, sessions: Any) -> None:
    with sessions.begin() as session:
        mark_article(session, world.ids["original"], "reviewed", with_copies=True)
    remaining = digest_ids(sessions)
    assert world.ids["original"] not in remaining and world.ids["copy"] not in remaining
    assert world.ids["other"] in remaining


def test_mark_refuses_bad_input(world: World, sessions: Any) -> None:
    with sessions.begin() as session:
        with pytest.raises(ReviewError, match="unknown review status 'done'"):
            mark_article(session, world.ids["other"], "done")
        with pytest.raises(ReviewError, match="no article with id 999"):
            mark_article(session, 999, "reviewed")
        with pytest.raises(ReviewError, match="limit is 4000"):
            mark_article(session, world.ids["other"], "reviewed", "x" * 4001)


# -- matches and candidates -------------------------------------------------------------------


def test_rejected_match_leaves_the_digest_and_the_conflict_flag(world: World,
                                                               sessions: Any) -> None:
    def entry() -> dict:
        with sessions() as session:
            data = build_digest(session, since=None, include_reviewed=True)
        return next(a for a in data["articles"] if a["id"] == world.ids["original"])

    assert "conflict" in entry()["flags"]
    with sessions.begin() as session:
        assert review_match(session, world.ids["original"], "staff-25", "confirm").review \
            == "confirmed"
        review_match(session, world.ids["original"], "engineers-half", "reject")
    after = entry()
    assert "conflict" not in after["flags"]
    assert [c["claim_id"] for c in after["claims"]] == ["staff-25"]
    assert after["claims"][0]["review"] == "confirmed"
    with sessions.begin() as session:
        review_match(session, world.ids["original"], "engineers-half", "reopen")
    assert "conflict" in entry()["flags"]


def test_match_errors(world: World, sessions: Any) -> None:
    with sessions.begin() as session:
        with pytest.raises(ReviewError, match="has no match to claim 'never-repeated'"):
            review_match(session, world.ids["original"], "never-repeated", "confirm")
        with pytest.raises(ReviewError, match="unknown decision 'maybe'"):
            review_match(session, world.ids["original"], "staff-25", "maybe")
        with pytest.raises(ReviewError, match="no article with id 12345"):
            review_match(session, 12345, "staff-25", "confirm")


def test_reject_candidate(world: World, sessions: Any) -> None:
    cid = world.candidate_ids["hostile"]
    with sessions.begin() as session:
        assert decide_candidate(session, cid, "reject").status == "rejected"
    with sessions() as session:
        data = build_digest(session, since=None, include_reviewed=True)
    hostile = next(a for a in data["articles"] if a["id"] == world.ids["hostile"])
    assert hostile["candidates"] == [] and "new_claim_candidate" not in hostile["flags"]


# -- promote ----------------------------------------------------------------------------------


def test_promote_appends_to_the_claims_table_and_marks_copies(world: World,
                                                             sessions: Any) -> None:
    cid = world.candidate_ids["original"]
    with sessions.begin() as session:
        claim = promote_candidate(session, cid, "safety-council-january", world.topic)
    sentence = ORIGINAL_TEXT.splitlines()[2]
    assert claim.text == sentence
    assert claim.source == "https://northwire.example/2022/12/15/staff.html"
    assert claim.first_reported == "2022-12-15"
    claims = {c.id: c for c in load_claims(world.claims_file)}
    assert list(claims)[-1] == "safety-council-january"
    assert claims["safety-council-january"].text == sentence
    # Existing rows kept byte for byte (the header gains the columns the new row uses).
    lines = world.claims_file.read_text(encoding="utf-8").splitlines()
    assert lines[1:4] == CLAIMS_CSV.splitlines()[1:]
    assert lines[0] == "id,text,source,first_reported"
    with sessions() as session:
        statuses = {
            c.article_id: (c.status, c.promoted_claim_id)
            for c in session.scalars(select(ClaimCandidate).where(ClaimCandidate.sentence
                                                                  == sentence))
        }
        known = session.scalar(select(KnownClaim).where(
            KnownClaim.topic == TOPIC, KnownClaim.claim_id == "safety-council-january"))
    # The wire copy carried the same sentence: promoted with it.
    assert statuses == {world.ids["original"]: ("promoted", "safety-council-january"),
                        world.ids["copy"]: ("promoted", "safety-council-january")}
    assert known is not None and known.text == sentence


def test_promote_with_edited_text(world: World, sessions: Any) -> None:
    with sessions.begin() as session:
        promote_candidate(session, world.candidate_ids["original"], "council-meets",
                          world.topic, text="  A child-safety   council meets in January. ")
    assert load_claims(world.claims_file)[-1].text == "A child-safety council meets in January."


@pytest.mark.parametrize(
    ("new_id", "message"),
    [
        ("staff-25", "topic 'review-test' already has a claim 'staff-25'"),
        ("Bad Id", "claim id 'Bad Id' is not valid"),
        ("", "claim id '' is not valid"),
    ],
)
def test_promote_refusals_leave_file_and_database_unchanged(
    world: World, sessions: Any, new_id: str, message: str
) -> None:
    before = world.claims_file.read_bytes()
    with pytest.raises(ReviewError, match=message):
        with sessions.begin() as session:
            promote_candidate(session, world.candidate_ids["original"], new_id, world.topic)
    assert world.claims_file.read_bytes() == before
    with sessions() as session:
        assert session.get(ClaimCandidate, world.candidate_ids["original"]).status == "open"


def test_promote_rolls_back_when_the_file_refuses(world: World, sessions: Any) -> None:
    # The id is in the file but not (yet) in the database: append_claim refuses it.
    with world.claims_file.open("a", encoding="utf-8") as fh:
        fh.write('added-by-hand,"Written into the file by hand."\n')
    before = world.claims_file.read_bytes()
    with pytest.raises(ReviewError, match="duplicate claim id 'added-by-hand'"):
        with sessions.begin() as session:
            promote_candidate(session, world.candidate_ids["original"], "added-by-hand",
                              world.topic)
    assert world.claims_file.read_bytes() == before
    with sessions() as session:
        assert session.get(ClaimCandidate, world.candidate_ids["original"]).status == "open"
        assert session.scalar(select(KnownClaim).where(KnownClaim.claim_id == "added-by-hand")) \
            is None


def test_promote_twice_and_wrong_topic(world: World, sessions: Any, tmp_path: Path) -> None:
    from dataclasses import replace

    cid = world.candidate_ids["original"]
    with sessions.begin() as session:
        promote_candidate(session, cid, "first", world.topic)
    with pytest.raises(ReviewError, match="already promoted to claim 'first'"):
        with sessions.begin() as session:
            promote_candidate(session, cid, "second", world.topic)
    other_topic = replace(world.topic, name="another-topic")
    with pytest.raises(ReviewError, match="belongs to topic 'review-test', not 'another-topic'"):
        with sessions.begin() as session:
            promote_candidate(session, world.candidate_ids["hostile"], "third", other_topic)
    no_table = replace(world.topic, claims_path=None)
    with pytest.raises(ReviewError, match="has no claims table"):
        with sessions.begin() as session:
            promote_candidate(session, world.candidate_ids["hostile"], "third", no_table)


# -- coverage ---------------------------------------------------------------------------------


def test_claim_coverage(tmp_path: Path, db_url: str) -> None:
    world = make_world(tmp_path, db_url)
    engine, sessions = open_db(world.db_url)
    try:
        with sessions() as session:
            rows = {r.claim_id: r for r in claim_coverage(session, TOPIC)}
        assert list(rows) == ["staff-25", "engineers-half", "never-repeated"]
        staff = rows["staff-25"]
        # original, its copy and the hostile article; three distinct outlets
        assert (staff.articles, staff.outlets, staff.conflicts) == (3, 3, 0)
        assert staff.first_seen.isoformat() == "2022-12-15T10:00:00+00:00"
        assert staff.last_seen.isoformat() == "2022-12-18T10:00:00+00:00"
        half = rows["engineers-half"]
        assert (half.articles, half.outlets, half.conflicts) == (2, 2, 1)
        never = rows["never-repeated"]
        assert (never.articles, never.first_seen, never.last_seen) == (0, None, None)
        assert never.as_dict()["first_seen"] is None

        with sessions.begin() as session:
            review_match(session, world.ids["original"], "engineers-half", "reject")
        with sessions() as session:
            half = {r.claim_id: r for r in claim_coverage(session, TOPIC)}["engineers-half"]
            assert (half.articles, half.conflicts) == (1, 0)
            assert claim_coverage(session, "no-such-topic") == []
    finally:
        engine.dispose()


def _recounted(session: Any) -> dict[str, tuple]:
    """Coverage by aggregating every match (what the counters must always equal)."""
    from sqlalchemy import distinct, func

    seen = func.coalesce(Article.published, Article.fetched_at)
    rows = session.execute(
        select(ArticleClaim.claim_id, func.count(distinct(Article.id)),
               func.count(distinct(func.coalesce(Article.outlet, Article.source))),
               func.min(seen), func.max(seen))
        .join(Article, Article.id == ArticleClaim.article_id)
        .where(ArticleClaim.review != "rejected", Article.topic == TOPIC)
        .group_by(ArticleClaim.claim_id))
    return {r[0]: (r[1], r[2], str(r[3])[:16], str(r[4])[:16]) for r in rows}


def test_coverage_counters_follow_saves_and_reviews(tmp_path: Path, db_url: str) -> None:
    world = make_world(tmp_path, db_url)
    engine, sessions = open_db(world.db_url)
    try:
        steps = [(world.ids["original"], "staff-25", "reject"),
                 (world.ids["hostile"], "staff-25", "reject"),
                 (world.ids["original"], "staff-25", "confirm"),
                 (world.ids["original"], "engineers-half", "reject"),
                 (world.ids["original"], "engineers-half", "reopen")]
        for article_id, claim_id, decision in [(None, None, None), *steps]:
            if article_id is not None:
                with sessions.begin() as session:
                    review_match(session, article_id, claim_id, decision)
            with sessions() as session:
                counted = {r.claim_id: (r.articles, r.outlets, str(r.first_seen)[:16].replace("T", " "),
                                        str(r.last_seen)[:16].replace("T", " "))
                           for r in claim_coverage(session, TOPIC) if r.articles}
                assert counted == {k: (a, o, f.replace("T", " "), la.replace("T", " "))
                                   for k, (a, o, f, la) in _recounted(session).items()}, decision
        with sessions() as session:
            staff = {r.claim_id: r for r in claim_coverage(session, TOPIC)}["staff-25"]
        assert staff.articles == 2  # the hostile article's match stays rejected
    finally:
        engine.dispose()


def test_coverage_lists_claims_dropped_from_the_table(world: World, sessions: Any) -> None:
    with sessions.begin() as session:
        session.add(ArticleClaim(article_id=world.ids["other"], claim_id="retired-claim",
                                 sentence="x", sentence_index=0, score=90.0, tier="linked"))
        # a match written outside Store.save: the coverage counters learn it by a recount
        session.flush()
        recount_claim(session, TOPIC, "retired-claim")
    with sessions() as session:
        rows = {r.claim_id: r for r in claim_coverage(session)}
    assert rows["retired-claim"].text is None and rows["retired-claim"].articles == 1


# -- CLI --------------------------------------------------------------------------------------


def run(*args: str, env: dict[str, str] | None = None) -> Any:
    return CliRunner().invoke(main, list(args), env=env, catch_exceptions=False)


def test_cli_review_mark_and_match(world: World, sessions: Any) -> None:
    ids = world.ids
    result = run("review", "mark", str(ids["other"]), str(ids["hostile"]), "dismissed",
                 "--note", "off topic", "--db", world.db_url)
    assert result.exit_code == 0, result.output
    assert result.output.strip() == f"#{ids['other']}, #{ids['hostile']} marked dismissed"
    with sessions() as session:
        assert session.get(Article, ids["hostile"]).review_note == "off topic"
    assert set(digest_ids(sessions)) == {ids["original"], ids["copy"]}

    result = run("review", "match", str(ids["original"]), "engineers-half", "reject",
                 "--db", world.db_url)
    assert result.exit_code == 0, result.output
    assert "engineers-half: rejected" in result.output

    bad = run("review", "match", str(ids["original"]), "nope", "reject", "--db", world.db_url)
    assert bad.exit_code == 1
    assert bad.output.strip() == (f"Error: article {ids['original']} has no match to claim "
                                  "'nope'")
    bad = run("review", "mark", "999", "reviewed", "--db", world.db_url)
    assert (bad.exit_code, bad.output.strip()) == (1, "Error: no article with id 999")


def test_cli_claims_promote_and_list(world: World, sessions: Any) -> None:
    cid = world.candidate_ids["original"]
    result = run("claims", "promote", str(cid), "--id", "council-january",
                 "--topic-file", str(world.topic_file), "--db", world.db_url)
    assert result.exit_code == 0, result.output
    assert result.output.startswith(f"claim council-january added to {world.claims_file}")
    assert load_claims(world.claims_file)[-1].id == "council-january"

    again = run("claims", "promote", str(cid), "--id", "other-id",
                "--topic-file", str(world.topic_file), "--db", world.db_url)
    assert again.exit_code == 1 and "already promoted" in again.output

    missing = run("claims", "promote", "9999", "--id", "x", "--db", world.db_url)
    assert (missing.exit_code, missing.output.strip()) == (
        1, "Error: no claim candidate with id 9999")

    listing = run("claims", "list", "--topic", TOPIC, "--db", world.db_url)
    assert listing.exit_code == 0, listing.output
    lines = listing.output.splitlines()
    assert lines[0].split() == ["claim", "articles", "outlets", "conflicts", "first", "seen",
                                "last", "seen"]
    staff = next(line for line in lines if line.startswith("staff-25"))
    # Promotion re-matched the stored articles with the analysis chain: the hostile
    # article's hand-made staff-25 match (a script tag, not a claim) is not one it finds.
    assert staff.split() == ["staff-25", "2", "2", "0", "2022-12-15", "2022-12-15"]
    council = next(line for line in lines if line.startswith("council-january"))
    assert council.split()[1:3] == ["2", "2"]  # the candidate's article and its copy


def test_cli_promote_finds_the_topic_file_in_config_topics(world: World, monkeypatch:
                                                          pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(world.topic_file.parent.parent)
    (world.topic_file.parent.parent / "config").mkdir()
    world.topic_file.parent.rename(world.topic_file.parent.parent / "config" / "topics")
    result = run("claims", "promote", str(world.candidate_ids["original"]), "--id", "found-it",
                 "--db", world.db_url)
    assert result.exit_code == 0, result.output
    assert "claim found-it added to" in result.output


def test_cli_serve_refuses_a_public_address_without_a_token(world: World) -> None:
    result = run("serve", "--listen", "0.0.0.0:8750", "--db", world.db_url, env={
        "CLAIMWATCH_WEB_TOKEN": ""})
    assert result.exit_code == 1
    assert "not a loopback address, without an access token" in result.output
    short = run("serve", "--listen", "0.0.0.0:8750", "--token", "short", "--db", world.db_url)
    assert short.exit_code == 1 and "at least 16" in short.output
    bad = run("serve", "--listen", "localhost", "--db", world.db_url)
    assert bad.exit_code == 1 and "is not HOST:PORT" in bad.output


# -- digest --email against a real local SMTP server ------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Recorder:
    def __init__(self) -> None:
        self.envelopes: list[Any] = []

    async def handle_DATA(self, server, session, envelope):  # noqa: ANN001, N802
        self.envelopes.append(envelope)
        return "250 Message accepted for delivery"


def smtp_env(port: int, outbox: Path) -> dict[str, str]:
    return {
        "CLAIMWATCH_SMTP_HOST": "127.0.0.1",
        "CLAIMWATCH_SMTP_PORT": str(port),
        "CLAIMWATCH_SMTP_STARTTLS": "false",
        "CLAIMWATCH_SMTP_FROM": "claimwatch@example.org",
        "CLAIMWATCH_SMTP_TO": "desk@example.org",
        "CLAIMWATCH_SMTP_TIMEOUT": "5",
        "CLAIMWATCH_OUTBOX": str(outbox),
    }


def test_digest_email_is_kept_when_the_server_is_down_and_sent_next_run(
    world: World, tmp_path: Path
) -> None:
    port = free_port()
    outbox = tmp_path / "outbox"
    env = smtp_env(port, outbox)
    args = ["digest", "--since", EPOCH, "--email", "--db", world.db_url]

    down = run(*args, env=env)
    assert down.exit_code == 1
    assert down.output.startswith("Error: digest not sent: cannot connect to SMTP server")
    assert f"kept in {outbox}" in down.output
    assert len(list(outbox.glob("*.eml"))) == 1

    recorder = Recorder()
    controller = Controller(recorder, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        up = run(*args, env=env)
    finally:
        controller.stop()
    assert up.exit_code == 0, up.output
    assert up.output.strip() == ("digest sent to desk@example.org, after 1 earlier digest(s) "
                                 "from the outbox")
    assert list(outbox.glob("*.eml")) == []
    messages = [BytesParser(policy=policy.default).parsebytes(e.content)
                for e in recorder.envelopes]
    assert len(messages) == 2  # the kept one first, then today's
    for msg in messages:
        assert msg["To"] == "desk@example.org"
        assert msg.get_content_type() == "multipart/alternative"
        html = msg.get_body(("html",)).get_content()
        text = msg.get_body(("plain",)).get_content()
        assert "Advertisers pause Twitter spending" in html
        assert "Advertisers pause Twitter spending" in text
        assert "<script>window.__pwned" not in html  # scraped text escaped in the email too


def test_digest_email_needs_the_smtp_settings(world: World, tmp_path: Path) -> None:
    env = {k: "" for k in smtp_env(1, tmp_path)}
    result = run("digest", "--email", "--db", world.db_url, env=env)
    assert result.exit_code == 1
    assert result.output.strip() == ("Error: cannot email the digest: CLAIMWATCH_SMTP_HOST is "
                                     "not set: set it to the SMTP server's host name, e.g. "
                                     "smtp.example.org")


# -- "crawl now" for claimwatch serve ---------------------------------------------------------


def test_serve_crawl_now_runs_a_worker_and_refuses_doubles(tmp_path: Path) -> None:
    from claimwatch.cli.review import SubprocessCrawls
    from claimwatch.web import CrawlRefused
    from config.loader import load_topic
    from storage import leases
    from storage.models import CrawlRun

    demo = load_topic(Path(__file__).resolve().parents[1] / "config/topics/demo.yaml")
    db = f"sqlite:///{tmp_path / 'serve.sqlite'}"
    engine, sessions = open_db(db)
    crawls = SubprocessCrawls({demo.name: demo}, db, sessions)
    try:
        holder = leases.Holder.new("crawl")
        leases.acquire(sessions, demo.name, "demo-wire", holder)
        with pytest.raises(CrawlRefused, match="being crawled already by"):
            crawls(demo.name, "demo-wire")
        leases.release(sessions, demo.name, "demo-wire", holder)

        message = crawls(demo.name, "demo-wire")
        assert message.startswith("started in process ")
        with pytest.raises(CrawlRefused, match="started from this page .* is still running"):
            crawls(demo.name, "demo-wire")
        child = crawls.children[0]
        assert child.wait(timeout=120) == 0
        with sessions() as session:
            run = session.scalars(select(CrawlRun)).one()
        assert (run.topic, run.source, run.trigger, run.status) == (
            demo.name, "demo-wire", "manual", "ok")
        assert run.counts["new"] >= 8
    finally:
        crawls.close()
        engine.dispose()


# Run in a fresh interpreter: the digest, then which modules it loaded.
DIGEST_IMPORTS = """
import json, sys
from claimwatch.cli import main
try:
    main(["digest", "--since", sys.argv[2], "--format", "json", "--db", sys.argv[1]])
except SystemExit as done:
    assert not done.code, done.code
heavy = ("scrapy", "twisted", "trafilatura", "numpy", "rapidfuzz", "flask", "alembic",
         "pipeline.analysis", "pipeline.claims", "pipeline.extract", "claimwatch.web")
print(json.dumps(sorted(m for m in sys.modules if m.split(".")[0] in heavy or
                        any(m == h or m.startswith(h + ".") for h in heavy))), file=sys.stderr)
"""


def test_digest_command_imports_only_what_it_needs(world: World) -> None:
    """``claimwatch digest`` (run by cron) starts without the crawler, the extraction,
    the claims matcher or the web app: their imports were most of its second."""
    import json
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-c", DIGEST_IMPORTS, world.db_url, EPOCH],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert json.loads(done.stdout)["articles"], "the digest has the world's articles"
    assert json.loads(done.stderr.strip().splitlines()[-1]) == []
