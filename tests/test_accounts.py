"""People: accounts, sign-in, API tokens and the review history (claimwatch/accounts.py)."""

from __future__ import annotations

import re
from typing import Any

import pytest
from click.testing import CliRunner

from claimwatch.accounts import (
    AccountError,
    add_user,
    check_password,
    create_token,
    history,
    revoke_tokens,
)
from claimwatch.cli import main
from claimwatch.web import make_app
from tests.review_fixtures import World
from tests.test_web import Client

PASSWORD = "correct horse battery"


@pytest.fixture
def accounts(sessions: Any) -> Any:
    add_user(sessions, "alice", PASSWORD, "admin")
    add_user(sessions, "bob", PASSWORD, "reviewer")
    return sessions


def sign_in(client: Client, name: str, password: str = PASSWORD) -> Any:
    page = client.get("/login")
    csrf = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert csrf, page.text
    return client.post("/login", {"csrf": csrf.group(1), "name": name, "password": password,
                                  "next": "/?status=all"})


def test_without_accounts_the_page_works_as_before(world: World, sessions: Any) -> None:
    client = Client(make_app(sessions, [world.topic]))
    assert client.get("/").status == 200
    assert client.get("/login").status == 303  # nothing to sign in to: back to the list
    assert Client(make_app(sessions, [world.topic]), remote="10.0.0.7").get("/").status == 403


def test_sign_in_review_and_history(world: World, accounts: Any) -> None:
    client = Client(make_app(accounts, [world.topic]))
    first = client.get("/?status=all")
    assert first.status == 303 and first.header("Location").startswith("/login?next=")
    assert client.get("/articles.json").status == 401
    wrong = sign_in(client, "alice", "not the password")
    assert wrong.status == 401 and "wrong name or password" in wrong.text
    ok = sign_in(client, "bob")
    assert ok.status == 303 and ok.header("Location") == "/?status=all"
    cookies = [v for k, v in ok.headers if k.lower() == "set-cookie"]
    assert any(c.startswith("cw_user=") and "HttpOnly" in c and "SameSite=Lax" in c
               for c in cookies)
    page = client.get("/?status=all")
    assert page.status == 200 and "bob (reviewer)" in page.text
    aid = world.ids["original"]
    csrf = re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)
    assert client.post(f"/article/{aid}/review", {"csrf": csrf, "status": "reviewed",
                                                  "note": "checked the figures"}).status == 303
    assert client.post(f"/article/{aid}/match", {"csrf": csrf, "claim_id": "staff-25",
                                                 "decision": "reject"}).status == 303
    article = client.get(f"/article/{aid}").text
    history_html = article.split('id="history"')[1]
    assert "<td>bob</td><td>match rejected</td><td>claim id: staff-25</td>" in history_html
    assert "<td>bob</td><td>marked reviewed</td><td>note: checked the figures</td>" \
        in history_html
    # A reviewer cannot start crawls; signing out ends the session.
    crawl = client.post("/crawl", {"csrf": csrf, "topic": world.topic.name, "source": "wire"})
    assert crawl.status == 403 or "needs an admin" in crawl.text
    assert client.post("/logout", {"csrf": csrf}).status == 303
    assert client.get("/").status == 303


def test_forged_or_expired_sessions_are_refused(world: World, accounts: Any) -> None:
    app = make_app(accounts, [world.topic])
    client = Client(app)
    sign_in(client, "alice")
    value = client.cookies["cw_user"]
    user_id, expiry, signature = value.split(".")
    client.cookies["cw_user"] = f"{int(user_id) + 1}.{expiry}.{signature}"
    assert client.get("/").status == 303
    client.cookies["cw_user"] = f"{user_id}.{int(expiry) + 10}.{signature}"
    assert client.get("/").status == 303
    client.cookies["cw_user"] = f"{user_id}.1.{forge(app, f'{user_id}.1')}"
    assert client.get("/").status == 303  # signed, but expired
    client.cookies["cw_user"] = "é.é.é"
    assert client.get("/").status == 303


def forge(app: Any, value: str) -> str:
    """A cookie signature made with the app's own secret (as a leaked secret would)."""
    import hashlib
    import hmac

    secret = app.extensions["claimwatch"].secret
    return hmac.new(secret, f"user:{value}".encode(), hashlib.sha256).hexdigest()


def test_failed_sign_ins_are_slowed_down(world: World, accounts: Any) -> None:
    client = Client(make_app(accounts, [world.topic]))
    for _ in range(5):
        assert sign_in(client, "alice", "guess").status == 401
    blocked = sign_in(client, "alice")  # even the right password, for a minute
    assert blocked.status == 429 and "too many failed attempts" in blocked.text


def test_accounts_open_the_page_off_loopback(world: World, accounts: Any) -> None:
    client = Client(make_app(accounts, [world.topic]), remote="10.0.0.7",
                    host="desk.example.org")
    assert client.get("/").status == 303
    assert sign_in(client, "alice").status == 303
    assert client.get("/").status == 200


def test_api_tokens_per_user(world: World, accounts: Any) -> None:
    token = create_token(accounts, "bob", "ci")
    client = Client(make_app(accounts, [world.topic]))
    ok = client.get("/articles.json", headers={"Authorization": f"Bearer {token}"})
    assert ok.status == 200 and ok.json()["articles"]
    aid = world.ids["other"]
    done = client.post(f"/article/{aid}/review", {"status": "dismissed"},
                       headers={"Authorization": f"Bearer {token}", "Accept": "application/json"})
    assert done.status == 200, done.text
    with accounts() as session:
        [event] = history(session, aid)
        assert (event.actor, event.action) == ("bob", "marked dismissed")
    assert revoke_tokens(accounts, "bob") == 1
    refused = client.get("/articles.json", headers={"Authorization": f"Bearer {token}"})
    assert refused.status == 401


def test_daemon_api_takes_user_tokens(accounts: Any, world: World) -> None:
    class Control:
        def health(self) -> dict[str, Any]:
            return {"status": "ok"}

        def trigger(self, topic: str | None, source: str | None) -> dict[str, Any]:
            return {"runs": [{"id": 1}], "actor": "?"}

    client = Client(make_app(accounts, [world.topic], control=Control()))
    token = create_token(accounts, "alice")
    bearer = {"Authorization": f"Bearer {token}", "Accept": "application/json"}
    assert client.get("/api/runs", headers=bearer).status == 200
    assert client.get("/api/v1/runs", headers=bearer).status == 200
    assert client.get("/api/runs").status == 401
    assert client.get("/api/runs", headers={"Authorization": "Bearer cwt_nope"}).status == 401
    assert client.get("/api/health").status == 200  # a probe needs no account
    aid = world.ids["other"]
    done = client.post(f"/api/v1/articles/{aid}/review", {"status": "reviewed"}, headers=bearer)
    assert done.status == 200 and done.json()["status"] == "reviewed"
    with accounts() as session:
        assert history(session, aid)[0].actor == "alice"


def test_passwords_are_argon2_and_checked(accounts: Any) -> None:
    from storage.models import User

    with accounts() as session:
        stored = session.query(User).filter_by(name="alice").one().password_hash
        assert stored.startswith("$argon2id$") and PASSWORD not in stored
        assert check_password(session, "alice", PASSWORD).role == "admin"
        assert check_password(session, "alice", PASSWORD + "x") is None
        assert check_password(session, "nobody", PASSWORD) is None
    with pytest.raises(AccountError, match="at least 10 characters"):
        add_user(accounts, "carol", "short")
    with pytest.raises(AccountError, match="exists already"):
        add_user(accounts, "alice", PASSWORD)
    with pytest.raises(AccountError, match="role 'boss'"):
        add_user(accounts, "carol", PASSWORD, "boss")


def test_users_command(world: World, sessions: Any) -> None:
    runner = CliRunner()
    db = ["--db", world.db_url]
    added = runner.invoke(main, ["users", "add", "dana", "--role", "admin", "--password-stdin",
                                 *db], input=PASSWORD + "\n")
    assert added.exit_code == 0 and "user dana added (admin)" in added.output
    listed = runner.invoke(main, ["users", "list", *db])
    assert re.search(r"dana\s+admin\s+since \d{4}-\d\d-\d\d\s+0 API tokens", listed.output)
    token = runner.invoke(main, ["users", "token", "dana", "--label", "ci", *db])
    assert token.exit_code == 0 and token.output.startswith("cwt_")
    short = runner.invoke(main, ["users", "passwd", "dana", "--password-stdin", *db],
                          input="short\n")
    assert short.exit_code == 1 and "at least 10 characters" in short.output
    assert "Traceback" not in short.output
    missing = runner.invoke(main, ["users", "remove", "nobody", *db])
    assert missing.exit_code == 1 and "no user 'nobody'" in missing.output
    assert runner.invoke(main, ["users", "role", "dana", "reviewer", *db]).exit_code == 0
    mark = runner.invoke(main, ["review", "mark", str(world.ids["copy"]), "reviewed", *db])
    assert mark.exit_code == 0
    with sessions() as session:
        [event] = history(session, world.ids["copy"])
        assert event.actor.startswith("cli") and event.action == "marked reviewed"
    assert runner.invoke(main, ["users", "remove", "dana", *db]).exit_code == 0
    assert "no accounts" in runner.invoke(main, ["users", "list", *db]).output
