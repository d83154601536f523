"""Send the digest by email, with an on-disk outbox for messages that could not be sent.

Typical use by the daemon or the CLI::

    settings = SmtpSettings.from_env()          # MailConfigError names a missing variable
    outbox = Outbox(outbox_dir())               # $CLAIMWATCH_OUTBOX or the data directory
    result = deliver_digest(digest, settings, outbox)
    # the outbox was flushed first (result.flushed); a digest that could not be sent now
    # waits there (result.queued, result.error) and goes out on the next delivery

Nothing here reads configuration at import time; the SMTP client class is injectable
(``smtp_factory``) for tests.
"""

from __future__ import annotations

import contextlib
import logging
import os
import smtplib
import ssl
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from email.utils import format_datetime, make_msgid, parseaddr
from pathlib import Path
from typing import Any, cast

from claimwatch.digest.render import digest_subject, render_html, render_text

try:  # POSIX only; on other systems concurrent flushes are not guarded
    import fcntl
except ImportError:  # pragma: no cover
    fcntl = None  # type: ignore[assignment]

logger = logging.getLogger(__name__)

__all__ = [
    "MailError",
    "MailConfigError",
    "MailSendError",
    "SmtpSettings",
    "build_message",
    "send_message",
    "send_digest",
    "Outbox",
    "outbox_dir",
    "DeliveryResult",
    "deliver_digest",
]

ENV_PREFIX = "CLAIMWATCH_SMTP_"
OUTBOX_ENV = "CLAIMWATCH_OUTBOX"
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}

SmtpFactory = Callable[..., smtplib.SMTP]


class MailError(Exception):
    """Base class for mail errors."""


class MailConfigError(MailError, ValueError):
    """The SMTP settings are missing or invalid; the message names the variable."""


class MailSendError(MailError):
    """The message could not be handed to the SMTP server.

    ``email`` is the message that was not sent (put it in an :class:`Outbox`);
    ``reason`` is the underlying error as text.
    """

    def __init__(self, message: str, *, reason: str = "", email: EmailMessage | None = None):
        super().__init__(message)
        self.reason = reason or message
        self.email = email


@dataclass(kw_only=True)
class SmtpSettings:
    """Where and how to send the digest. ``ssl`` means implicit TLS (port 465);
    ``starttls`` upgrades a plain connection and fails if the server cannot."""

    host: str
    port: int = 587
    starttls: bool = True
    ssl: bool = False
    user: str | None = None
    password: str | None = field(default=None, repr=False)
    sender: str
    recipients: list[str]
    timeout: float = 30

    def __post_init__(self) -> None:
        if isinstance(self.recipients, str):
            self.recipients = _split_addresses(self.recipients)
        else:
            self.recipients = list(self.recipients)
        if not self.recipients:
            raise MailConfigError("no recipients: set CLAIMWATCH_SMTP_TO")

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> SmtpSettings:
        """Read ``CLAIMWATCH_SMTP_*`` variables (``environ`` defaults to ``os.environ``).

        Required: ``CLAIMWATCH_SMTP_HOST``, ``CLAIMWATCH_SMTP_FROM``, ``CLAIMWATCH_SMTP_TO``
        (comma-separated). Optional: ``_PORT`` (587, or 465 with ``_SSL``), ``_STARTTLS``
        (true unless ``_SSL``), ``_SSL`` (false), ``_USER`` and ``_PASSWORD`` (together),
        ``_TIMEOUT`` (seconds, 30).
        """
        env = os.environ if environ is None else environ

        def get(name: str) -> str | None:
            value = env.get(ENV_PREFIX + name)
            return value.strip() if value is not None and value.strip() else None

        def required(name: str, what: str) -> str:
            value = get(name)
            if value is None:
                raise MailConfigError(f"{ENV_PREFIX}{name} is not set: set it to {what}")
            return value

        def boolean(name: str) -> bool | None:
            value = get(name)
            if value is None:
                return None
            if value.lower() in _TRUE:
                return True
            if value.lower() in _FALSE:
                return False
            raise MailConfigError(
                f"{ENV_PREFIX}{name}={value!r} is not a boolean: use true or false"
            )

        host = required("HOST", "the SMTP server's host name, e.g. smtp.example.org")
        sender = required("FROM", "the sender address, e.g. claimwatch@example.org")
        recipients = _split_addresses(
            required("TO", "a comma-separated list of recipient addresses")
        )
        if not _address(sender):
            raise MailConfigError(f"{ENV_PREFIX}FROM={sender!r} is not an email address")
        bad = [r for r in recipients if not _address(r)]
        if not recipients or bad:
            raise MailConfigError(
                f"{ENV_PREFIX}TO has no valid address: {', '.join(bad) or 'empty list'}"
            )

        use_ssl = boolean("SSL") or False
        starttls = boolean("STARTTLS")
        if use_ssl and starttls:
            raise MailConfigError(
                f"{ENV_PREFIX}SSL and {ENV_PREFIX}STARTTLS are both true: use SSL for port 465 "
                "(implicit TLS) or STARTTLS for port 587, not both"
            )
        if starttls is None:
            starttls = not use_ssl

        port_text = get("PORT")
        if port_text is None:
            port = 465 if use_ssl else 587
        else:
            try:
                port = int(port_text)
            except ValueError:
                port = -1
            if not 0 < port < 65536:
                raise MailConfigError(f"{ENV_PREFIX}PORT={port_text!r} is not a port number")

        timeout_text = get("TIMEOUT")
        timeout = 30.0
        if timeout_text is not None:
            try:
                timeout = float(timeout_text)
            except ValueError:
                timeout = -1
            if timeout <= 0:
                raise MailConfigError(
                    f"{ENV_PREFIX}TIMEOUT={timeout_text!r} is not a positive number of seconds"
                )

        user, password = get("USER"), env.get(ENV_PREFIX + "PASSWORD")
        if user and not password:
            raise MailConfigError(
                f"{ENV_PREFIX}PASSWORD is not set but {ENV_PREFIX}USER is: set both or neither"
            )
        if password and not user:
            raise MailConfigError(
                f"{ENV_PREFIX}USER is not set but {ENV_PREFIX}PASSWORD is: set both or neither"
            )
        return cls(
            host=host,
            port=port,
            starttls=starttls,
            ssl=use_ssl,
            user=user,
            password=password or None,
            sender=sender,
            recipients=recipients,
            timeout=timeout,
        )


def _split_addresses(value: str) -> list[str]:
    return [part.strip() for part in value.split(",") if part.strip()]


def _address(value: str) -> str:
    """The bare address of ``Name <addr@host>``, or '' if it does not look like one."""
    addr = parseaddr(value)[1]
    local, at, domain = addr.rpartition("@")
    return addr if at and local and domain else ""


# --------------------------------------------------------------------------- messages


def build_message(
    digest: Mapping[str, Any], settings: SmtpSettings, *, now: datetime | None = None
) -> EmailMessage:
    """multipart/alternative: the text rendering, then the HTML rendering."""
    msg = EmailMessage()
    msg["Subject"] = digest_subject(digest)
    msg["From"] = settings.sender
    msg["To"] = ", ".join(settings.recipients)
    msg["Date"] = format_datetime(now or datetime.now(UTC))
    domain = _address(settings.sender).rpartition("@")[2] or "claimwatch.invalid"
    msg["Message-ID"] = make_msgid(idstring="claimwatch", domain=domain)
    msg["Auto-Submitted"] = "auto-generated"
    msg.set_content(render_text(digest, width=78))
    msg.add_alternative(render_html(digest), subtype="html")
    return msg


def _describe(exc: BaseException) -> str:
    if isinstance(exc, smtplib.SMTPResponseException):
        text = exc.smtp_error
        if isinstance(text, bytes):
            text = text.decode("utf-8", "replace")
        return f"{exc.smtp_code} {text}".strip()
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        return "all recipients refused: " + ", ".join(exc.recipients)
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


def _send_error(what: str, exc: BaseException,
                email: EmailMessage | None = None) -> MailSendError:
    """``what: the server's reason``, the reason kept apart for the delivery record."""
    reason = _describe(exc)
    return MailSendError(f"{what}: {reason}", reason=reason, email=email)


@contextlib.contextmanager
def _connection(settings: SmtpSettings, smtp_factory: SmtpFactory | None) -> Iterator[smtplib.SMTP]:
    """An SMTP session that is connected, TLS-protected as configured and logged in."""
    where = f"{settings.host}:{settings.port}"
    smtp: smtplib.SMTP
    try:
        if smtp_factory is None:
            if settings.ssl:
                smtp = smtplib.SMTP_SSL(
                    settings.host,
                    settings.port,
                    timeout=settings.timeout,
                    context=ssl.create_default_context(),
                )
            else:
                smtp = smtplib.SMTP(settings.host, settings.port, timeout=settings.timeout)
        else:
            smtp = smtp_factory(settings.host, settings.port, timeout=settings.timeout)
    except (OSError, smtplib.SMTPException) as exc:
        raise _send_error(f"cannot connect to SMTP server {where}", exc) from exc
    try:
        try:
            smtp.ehlo()
            if settings.starttls and not settings.ssl:
                if not smtp.has_extn("starttls"):
                    raise MailSendError(
                        f"SMTP server {where} does not offer STARTTLS; set "
                        f"{ENV_PREFIX}STARTTLS=false only if the connection is trusted",
                        reason="STARTTLS not supported by server",
                    )
                smtp.starttls(context=ssl.create_default_context())
                smtp.ehlo()
            if settings.user:
                smtp.login(settings.user, settings.password or "")
        except (OSError, smtplib.SMTPException) as exc:
            raise _send_error(f"SMTP session with {where} failed", exc) from exc
        yield smtp
    finally:
        with contextlib.suppress(OSError, smtplib.SMTPException):
            smtp.quit()
        with contextlib.suppress(OSError):
            smtp.close()


def _send_on(smtp: smtplib.SMTP, msg: EmailMessage, settings: SmtpSettings) -> None:
    where = f"{settings.host}:{settings.port}"
    try:
        refused = smtp.send_message(msg, from_addr=_address(settings.sender) or settings.sender)
    except (OSError, smtplib.SMTPException) as exc:
        raise _send_error(f"SMTP server {where} did not accept the message", exc,
                          email=msg) from exc
    if refused:  # accepted for some recipients: resending would duplicate it for the rest
        logger.warning("digest %s refused for some recipients: %s", msg["Message-ID"], refused)


def send_message(
    msg: EmailMessage, settings: SmtpSettings, *, smtp_factory: SmtpFactory | None = None
) -> None:
    """Send one prepared message to the recipients in its To/Cc headers."""
    try:
        with _connection(settings, smtp_factory) as smtp:
            _send_on(smtp, msg, settings)
    except MailSendError as exc:
        exc.email = msg
        raise
    logger.info("sent %s to %s", msg["Message-ID"], msg["To"])


def send_digest(
    digest: Mapping[str, Any],
    settings: SmtpSettings,
    *,
    smtp_factory: SmtpFactory | None = None,
    outbox: Outbox | None = None,
) -> None:
    """Build and send the digest email.

    ``smtp_factory`` defaults to :class:`smtplib.SMTP` (``SMTP_SSL`` when
    ``settings.ssl``). On failure raises :class:`MailSendError` whose ``email`` is the
    unsent message; if ``outbox`` is given the message is stored there first.
    """
    msg = build_message(digest, settings)
    try:
        send_message(msg, settings, smtp_factory=smtp_factory)
    except MailSendError as exc:
        if outbox is not None:
            path = outbox.put(msg)
            logger.warning("digest not sent (%s); kept in %s", exc.reason, path)
        raise


# --------------------------------------------------------------------------- outbox


class Outbox:
    """Unsent messages as ``.eml`` files in a directory, oldest first.

    ``put`` writes atomically (temporary file, then rename), so a crash never leaves a
    half-written message to be sent; ``flush`` deletes a file only after the server
    accepted it, and holds a lock so two processes never send the same file twice.
    """

    suffix = ".eml"

    def __init__(self, directory: str | os.PathLike[str]):
        self.directory = Path(directory)
        self.last_error: str | None = None  # why the last flush left messages unsent

    def __repr__(self) -> str:
        return f"Outbox({str(self.directory)!r})"

    def put(self, msg: EmailMessage) -> Path:
        self.directory.mkdir(parents=True, exist_ok=True)
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
        name = f"{stamp}-{uuid.uuid4().hex[:12]}{self.suffix}"
        path = self.directory / name
        tmp = self.directory / f".{name}.tmp"
        data = msg.as_bytes(policy=policy.SMTP)
        with open(tmp, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
        return path

    def pending(self) -> list[Path]:
        if not self.directory.is_dir():
            return []
        return sorted(p for p in self.directory.glob("*" + self.suffix) if p.is_file())

    @staticmethod
    def load(path: str | os.PathLike[str]) -> EmailMessage:
        with open(path, "rb") as fh:
            return cast(EmailMessage, BytesParser(policy=policy.default).parse(fh))

    @contextlib.contextmanager
    def _lock(self) -> Iterator[bool]:
        if fcntl is None:
            yield True
            return
        self.directory.mkdir(parents=True, exist_ok=True)
        with open(self.directory / ".lock", "a+b") as fh:
            try:
                fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                yield False
                return
            try:
                yield True
            finally:
                fcntl.flock(fh.fileno(), fcntl.LOCK_UN)

    def flush(
        self,
        settings: SmtpSettings,
        smtp_factory: SmtpFactory | None = None,
        *,
        sent_ids: list[str] | None = None,
    ) -> tuple[int, int]:
        """Send every pending message over one SMTP session; returns ``(sent, failed)``.

        A message the server refuses stays in the outbox and the others are still
        tried; if the connection cannot be made or drops, the rest count as failed
        (``last_error`` says why). The Message-ID of each message sent is appended to
        ``sent_ids`` when given.
        """
        self.last_error = None
        paths = self.pending()
        if not paths:
            return 0, 0
        with self._lock() as locked:
            if not locked:
                logger.info("outbox %s is being flushed by another process", self.directory)
                return 0, 0
            paths = self.pending()  # re-read under the lock
            sent = 0
            try:
                with _connection(settings, smtp_factory) as smtp:
                    for i, path in enumerate(paths):
                        try:
                            msg = self.load(path)
                        except (OSError, ValueError) as exc:
                            logger.warning("outbox: cannot read %s: %s", path, exc)
                            continue
                        try:
                            _send_on(smtp, msg, settings)
                        except MailSendError as exc:
                            logger.warning("outbox: %s not sent: %s", path.name, exc.reason)
                            self.last_error = str(exc)
                            if not _still_connected(smtp):
                                break
                            continue
                        path.unlink(missing_ok=True)
                        sent += 1
                        if sent_ids is not None:
                            sent_ids.append(str(msg["Message-ID"] or ""))
                        logger.info("outbox: sent %s (%d of %d)", path.name, i + 1, len(paths))
            except MailSendError as exc:
                logger.warning("outbox: %d message(s) not sent: %s", len(paths) - sent, exc)
                self.last_error = str(exc)
            return sent, len(paths) - sent


def _still_connected(smtp: smtplib.SMTP) -> bool:
    try:
        return smtp.noop()[0] == 250
    except (OSError, smtplib.SMTPException):
        return False


def outbox_dir(environ: Mapping[str, str] | None = None) -> Path:
    """Where unsent digests wait: ``$CLAIMWATCH_OUTBOX``, else ``outbox/`` in the data dir."""
    env = os.environ if environ is None else environ
    if env.get(OUTBOX_ENV):
        return Path(env[OUTBOX_ENV]).expanduser()
    from platformdirs import user_data_dir

    return Path(user_data_dir("claimwatch", appauthor=False)) / "outbox"


# --------------------------------------------------------------------------- delivery


@dataclass(kw_only=True)
class DeliveryResult:
    """What :func:`deliver_digest` did.

    ``sent``: the digest went out now. Otherwise ``error`` says why and ``queued`` is
    its file in the outbox (it goes out with the next delivery). ``flushed`` holds the
    Message-IDs of earlier digests sent from the outbox first; ``waiting`` counts the
    earlier ones still there (not this one); ``flush_error`` says why they stayed.
    """

    recipients: list[str]
    outbox: Path
    message_id: str | None = None
    sent: bool = False
    error: str | None = None
    reason: str | None = None
    queued: Path | None = None
    flushed: list[str] = field(default_factory=list)
    waiting: int = 0
    flush_error: str | None = None


def deliver_digest(
    digest: Mapping[str, Any] | None,
    settings: SmtpSettings,
    outbox: Outbox,
    *,
    flush: bool = True,
    smtp_factory: SmtpFactory | None = None,
) -> DeliveryResult:
    """Send what waits in ``outbox`` (unless ``flush=False``), then the digest.

    A digest that cannot be sent is kept in the outbox and reported in the result (it
    is not an exception: it is not lost). ``digest=None`` only flushes the outbox.
    Raises :class:`MailSendError` only when the digest can be neither sent nor kept.
    """
    result = DeliveryResult(recipients=list(settings.recipients), outbox=outbox.directory)
    if flush:
        _, result.waiting = outbox.flush(settings, smtp_factory, sent_ids=result.flushed)
        result.flush_error = outbox.last_error
    if digest is None:
        return result
    msg = build_message(digest, settings)
    result.message_id = str(msg["Message-ID"])
    try:
        send_message(msg, settings, smtp_factory=smtp_factory)
    except MailSendError as exc:
        try:
            path = outbox.put(msg)
        except OSError as put_error:
            raise MailSendError(
                f"{exc}; and it could not be kept in the outbox {outbox.directory}: {put_error}",
                reason=exc.reason, email=msg,
            ) from put_error
        logger.info("digest not sent (%s); kept in %s", exc.reason, path)
        result.error, result.reason, result.queued = str(exc), exc.reason, path
        return result
    result.sent = True
    return result
