"""Email sending against a real local SMTP server (aiosmtpd), plus the outbox."""

from __future__ import annotations

import json
import smtplib
import socket
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from claimwatch.digest import mail as mailer
from claimwatch.digest.mail import (
    MailConfigError,
    MailSendError,
    Outbox,
    SmtpSettings,
    build_message,
    send_digest,
    send_message,
)
from claimwatch.digest.render import render_text

FIXTURE = Path(__file__).parent / "fixtures" / "digest-sample.json"
SUBJECT = "claimwatch digest: twitter-child-safety — 10 flagged since 2022-12-05 07:00 UTC"


@pytest.fixture
def digest() -> dict:
    return json.loads(FIXTURE.read_text(encoding="utf-8"))


def free_port() -> int:
    """A port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Recorder:
    """aiosmtpd handler: keeps every envelope; refuses recipients named bounce@..."""

    def __init__(self) -> None:
        self.envelopes: list[Any] = []

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):  # noqa: ANN001
        if address.startswith("bounce@"):
            return "550 5.1.1 no such user"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):  # noqa: ANN001
        self.envelopes.append(envelope)
        return "250 Message accepted for delivery"

    def messages(self) -> list[EmailMessage]:
        return [BytesParser(policy=policy.default).parsebytes(e.content) for e in self.envelopes]


class SmtpServer:
    def __init__(self, **kwargs: Any) -> None:
        self.handler = Recorder()
        self.port = free_port()
        self.controller = Controller(self.handler, hostname="127.0.0.1", port=self.port, **kwargs)

    def settings(self, **overrides: Any) -> SmtpSettings:
        values: dict[str, Any] = {
            "host": "127.0.0.1",
            "port": self.port,
            "starttls": False,  # aiosmtpd here has no certificate
            "sender": "claimwatch <claimwatch@example.org>",
            "recipients": ["reviewer@example.org", "desk@example.net"],
            "timeout": 5,
        }
        values.update(overrides)
        return SmtpSettings(**values)


@pytest.fixture
def smtp_server():
    server = SmtpServer()
    server.controller.start()
    try:
        yield server
    finally:
        server.controller.stop()


def closed_settings(**overrides: Any) -> SmtpSettings:
    values: dict[str, Any] = {
        "host": "127.0.0.1",
        "port": free_port(),
        "starttls": False,
        "sender": "claimwatch@example.org",
        "recipients": ["reviewer@example.org"],
        "timeout": 5,
    }
    values.update(overrides)
    return SmtpSettings(**values)


# --------------------------------------------------------------------------- settings

ENV = {
    "CLAIMWATCH_SMTP_HOST": "smtp.example.org",
    "CLAIMWATCH_SMTP_PORT": "2525",
    "CLAIMWATCH_SMTP_STARTTLS": "false",
    "CLAIMWATCH_SMTP_USER": "cw",
    "CLAIMWATCH_SMTP_PASSWORD": "s3cret",
    "CLAIMWATCH_SMTP_FROM": "claimwatch <cw@example.org>",
    "CLAIMWATCH_SMTP_TO": "a@example.org, b@example.org,",
}


def test_settings_from_env() -> None:
    s = SmtpSettings.from_env(ENV)
    assert s == SmtpSettings(
        host="smtp.example.org",
        port=2525,
        starttls=False,
        ssl=False,
        user="cw",
        password="s3cret",
        sender="claimwatch <cw@example.org>",
        recipients=["a@example.org", "b@example.org"],
        timeout=30,
    )
    assert "s3cret" not in repr(s)


def test_settings_defaults_and_ssl() -> None:
    base = {
        k: ENV[k] for k in ("CLAIMWATCH_SMTP_HOST", "CLAIMWATCH_SMTP_FROM", "CLAIMWATCH_SMTP_TO")
    }
    s = SmtpSettings.from_env(base)
    assert (s.port, s.starttls, s.ssl, s.user, s.password) == (587, True, False, None, None)
    s = SmtpSettings.from_env({**base, "CLAIMWATCH_SMTP_SSL": "yes"})
    assert (s.port, s.starttls, s.ssl) == (465, False, True)


def test_settings_read_os_environ_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    for key, value in ENV.items():
        monkeypatch.setenv(key, value)
    assert SmtpSettings.from_env().host == "smtp.example.org"


@pytest.mark.parametrize(
    "missing", ["CLAIMWATCH_SMTP_HOST", "CLAIMWATCH_SMTP_FROM", "CLAIMWATCH_SMTP_TO"]
)
def test_settings_missing_required(missing: str) -> None:
    env = {k: v for k, v in ENV.items() if k != missing}
    with pytest.raises(MailConfigError, match=f"^{missing} is not set"):
        SmtpSettings.from_env(env)
    with pytest.raises(MailConfigError, match=missing):
        SmtpSettings.from_env({**env, missing: "   "})


@pytest.mark.parametrize(
    ("override", "variable"),
    [
        ({"CLAIMWATCH_SMTP_PORT": "smtp"}, "CLAIMWATCH_SMTP_PORT"),
        ({"CLAIMWATCH_SMTP_PORT": "70000"}, "CLAIMWATCH_SMTP_PORT"),
        ({"CLAIMWATCH_SMTP_STARTTLS": "maybe"}, "CLAIMWATCH_SMTP_STARTTLS"),
        (
            {"CLAIMWATCH_SMTP_SSL": "true", "CLAIMWATCH_SMTP_STARTTLS": "true"},
            "CLAIMWATCH_SMTP_SSL",
        ),
        ({"CLAIMWATCH_SMTP_PASSWORD": ""}, "CLAIMWATCH_SMTP_PASSWORD"),
        ({"CLAIMWATCH_SMTP_TO": "not-an-address"}, "CLAIMWATCH_SMTP_TO"),
        ({"CLAIMWATCH_SMTP_FROM": "nobody"}, "CLAIMWATCH_SMTP_FROM"),
        ({"CLAIMWATCH_SMTP_TIMEOUT": "-3"}, "CLAIMWATCH_SMTP_TIMEOUT"),
    ],
)
def test_settings_invalid_values(override: dict[str, str], variable: str) -> None:
    with pytest.raises(MailConfigError, match=variable):
        SmtpSettings.from_env({**ENV, **override})


# --------------------------------------------------------------------------- message


def test_build_message(digest: dict) -> None:
    settings = closed_settings(recipients=["a@example.org", "b@example.org"])
    msg = build_message(digest, settings)
    assert msg.get_content_type() == "multipart/alternative"
    assert msg["Subject"] == SUBJECT
    assert msg["To"] == "a@example.org, b@example.org"
    assert msg["From"] == "claimwatch@example.org"
    assert msg["Date"] and msg["Message-ID"].endswith("@example.org>")
    text, html_part = msg.iter_parts()
    assert text.get_content_type() == "text/plain"
    assert html_part.get_content_type() == "text/html"
    assert text.get_content() == render_text(digest, width=78)
    assert "Carried by 5 outlets" in html_part.get_content()
    assert "&lt;script&gt;" in html_part.get_content()
    # survives the trip through bytes (what the server and the outbox see)
    again = BytesParser(policy=policy.default).parsebytes(msg.as_bytes(policy=policy.SMTP))
    assert again["Subject"] == SUBJECT


# --------------------------------------------------------------------------- live server


def test_send_digest_to_live_server(smtp_server: SmtpServer, digest: dict) -> None:
    send_digest(digest, smtp_server.settings())
    (envelope,) = smtp_server.handler.envelopes
    assert envelope.mail_from == "claimwatch@example.org"
    assert envelope.rcpt_tos == ["reviewer@example.org", "desk@example.net"]
    (msg,) = smtp_server.handler.messages()
    assert msg["Subject"] == SUBJECT
    assert msg["To"] == "reviewer@example.org, desk@example.net"
    assert msg.get_content_type() == "multipart/alternative"
    parts = {p.get_content_type(): p.get_content() for p in msg.iter_parts()}
    assert set(parts) == {"text/plain", "text/html"}
    assert (
        "10 articles: 5 new reports, 5 duplicates, 1 conflict, 2 candidates" in parts["text/plain"]
    )
    assert "Süddeutsche Zeitung" in parts["text/plain"]
    assert parts["text/html"].startswith("<!DOCTYPE html>")


def _authenticator(server, session, envelope, mechanism, auth_data):  # noqa: ANN001
    ok = isinstance(auth_data, LoginPassword) and (
        auth_data.login == b"cw" and auth_data.password == b"s3cret"
    )
    # handled=False: let aiosmtpd answer "535" itself on failure (its default is True)
    return AuthResult(success=ok, handled=False)


@pytest.fixture
def auth_server():
    server = SmtpServer(authenticator=_authenticator, auth_require_tls=False)
    server.controller.start()
    try:
        yield server
    finally:
        server.controller.stop()


# aiosmtpd 1.4.6 raises a UserWarning ("Requiring AUTH while not requiring TLS") only
# with auth_required=True; this server offers AUTH without requiring it, so it stays
# quiet under filterwarnings=error and no filter is needed.
def test_login(auth_server: SmtpServer, digest: dict) -> None:
    send_digest(digest, auth_server.settings(user="cw", password="s3cret"))
    assert len(auth_server.handler.envelopes) == 1
    with pytest.raises(MailSendError, match="535") as err:
        send_digest(digest, auth_server.settings(user="cw", password="wrong"))
    assert err.value.email is not None
    assert len(auth_server.handler.envelopes) == 1


def test_starttls_required_but_not_offered(smtp_server: SmtpServer, digest: dict) -> None:
    with pytest.raises(MailSendError, match="does not offer STARTTLS"):
        send_digest(digest, smtp_server.settings(starttls=True))
    assert smtp_server.handler.envelopes == []


def test_all_recipients_refused(smtp_server: SmtpServer, digest: dict) -> None:
    settings = smtp_server.settings(recipients=["bounce@example.org"])
    with pytest.raises(MailSendError, match="did not accept") as err:
        send_digest(digest, settings)
    assert "bounce@example.org" in err.value.reason


# --------------------------------------------------------------------------- outbox


def test_closed_port_then_outbox_flush(
    smtp_server: SmtpServer, digest: dict, tmp_path: Path
) -> None:
    outbox = Outbox(tmp_path / "outbox")
    assert outbox.pending() == []
    settings = closed_settings()
    with pytest.raises(MailSendError, match="cannot connect to SMTP server 127.0.0.1") as err:
        send_digest(digest, settings, outbox=outbox)
    assert err.value.reason and isinstance(err.value.email, EmailMessage)
    (path,) = outbox.pending()
    assert path.suffix == ".eml" and path.parent == tmp_path / "outbox"
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # no temp files left
    stored = Outbox.load(path)
    assert stored["Message-ID"] == err.value.email["Message-ID"]

    # still down: nothing sent, nothing lost
    assert outbox.flush(settings) == (0, 1)
    assert outbox.pending() == [path]

    # the server is back
    assert outbox.flush(smtp_server.settings()) == (1, 0)
    assert outbox.pending() == []
    (msg,) = smtp_server.handler.messages()
    assert msg["Message-ID"] == err.value.email["Message-ID"]
    assert msg["Subject"] == SUBJECT
    assert {p.get_content_type() for p in msg.iter_parts()} == {"text/plain", "text/html"}
    assert smtp_server.handler.envelopes[0].rcpt_tos == ["reviewer@example.org"]


def test_caller_can_queue_the_failed_message(digest: dict, tmp_path: Path) -> None:
    outbox = Outbox(tmp_path)
    try:
        send_digest(digest, closed_settings())
    except MailSendError as exc:
        assert exc.email is not None
        outbox.put(exc.email)
    assert len(outbox.pending()) == 1


def test_flush_keeps_refused_message_and_sends_the_rest(
    smtp_server: SmtpServer, digest: dict, tmp_path: Path
) -> None:
    outbox = Outbox(tmp_path)
    bad = outbox.put(build_message(digest, closed_settings(recipients=["bounce@example.org"])))
    good = outbox.put(build_message(digest, closed_settings(recipients=["desk@example.org"])))
    assert outbox.pending() == sorted([bad, good])
    assert outbox.flush(smtp_server.settings()) == (1, 1)
    assert outbox.pending() == [bad]
    assert [e.rcpt_tos for e in smtp_server.handler.envelopes] == [["desk@example.org"]]


def test_flush_empty_outbox(tmp_path: Path) -> None:
    assert Outbox(tmp_path / "does-not-exist").flush(closed_settings()) == (0, 0)


# --------------------------------------------------------------------------- session protocol


class FakeSMTP:
    """Records the calls the mailer makes; offers STARTTLS."""

    instances: list[FakeSMTP] = []

    def __init__(self, host: str, port: int, timeout: float = 0, **kwargs: Any) -> None:
        self.calls: list[str] = [f"connect {host}:{port} timeout={timeout} {sorted(kwargs)}"]
        FakeSMTP.instances.append(self)

    def ehlo(self) -> tuple[int, bytes]:
        self.calls.append("ehlo")
        return 250, b"ok"

    def has_extn(self, name: str) -> bool:
        return name.lower() == "starttls"

    def starttls(self, context: Any = None) -> tuple[int, bytes]:
        self.calls.append(f"starttls context={context is not None}")
        return 220, b"go ahead"

    def login(self, user: str, password: str) -> tuple[int, bytes]:
        self.calls.append(f"login {user}")
        return 235, b"ok"

    def send_message(self, msg: EmailMessage, from_addr: str | None = None) -> dict:
        self.calls.append(f"send from={from_addr}")
        return {}

    def noop(self) -> tuple[int, bytes]:
        return 250, b"ok"

    def quit(self) -> None:
        self.calls.append("quit")

    def close(self) -> None:
        self.calls.append("close")


def test_starttls_then_login_order(digest: dict) -> None:
    FakeSMTP.instances.clear()
    settings = closed_settings(port=587, starttls=True, user="cw", password="pw", timeout=7)
    send_digest(digest, settings, smtp_factory=FakeSMTP)
    (smtp,) = FakeSMTP.instances
    assert smtp.calls == [
        "connect 127.0.0.1:587 timeout=7 []",
        "ehlo",
        "starttls context=True",
        "ehlo",
        "login cw",
        "send from=claimwatch@example.org",
        "quit",
        "close",
    ]


def test_implicit_tls_uses_smtp_ssl(digest: dict, monkeypatch: pytest.MonkeyPatch) -> None:
    FakeSMTP.instances.clear()
    monkeypatch.setattr(mailer.smtplib, "SMTP_SSL", FakeSMTP)
    send_digest(digest, closed_settings(port=465, ssl=True, starttls=True))
    (smtp,) = FakeSMTP.instances
    assert smtp.calls[0] == "connect 127.0.0.1:465 timeout=5 ['context']"
    assert not any(c.startswith("starttls") for c in smtp.calls)


def test_send_message_wraps_smtp_errors(digest: dict) -> None:
    class Broken(FakeSMTP):
        def send_message(self, msg: EmailMessage, from_addr: str | None = None) -> dict:
            raise smtplib.SMTPDataError(554, b"5.7.1 rejected as spam")

    msg = build_message(digest, closed_settings())
    with pytest.raises(MailSendError, match="554 5.7.1 rejected as spam") as err:
        send_message(msg, closed_settings(), smtp_factory=Broken)
    assert err.value.email is msg
