"""People: named accounts, their API tokens, and the history of who reviewed what.

- Passwords are hashed with argon2id (argon2-cffi's defaults, the OWASP choice);
  a check against an unknown name still spends one hash, so timing does not tell
  which names exist.
- API tokens are random (``cwt_`` + 32 bytes, URL-safe); only their SHA-256 is
  stored and the token itself is shown once, when it is made.
- Every review action, on the page or in the CLI, is recorded in
  ``review_events`` with its actor and time (:func:`record`); the article page shows it.

A page with no accounts works as before for one person on the machine it runs on
(loopback); once an account exists, the page asks everybody to sign in.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from storage.models import ApiToken, ReviewEvent, User, utcnow

ROLES = ("reviewer", "admin")
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,79}$")
MIN_PASSWORD = 10
MAX_PASSWORD = 1024
TOKEN_PREFIX = "cwt_"
_TOUCH_EVERY = timedelta(minutes=5)  # how often a token's last use is written


class AccountError(ValueError):
    """An account operation that cannot be done as asked; the message says why."""


@dataclass(frozen=True)
class Account:
    id: int
    name: str
    role: str

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"


def _hasher() -> Any:
    from argon2 import PasswordHasher

    return PasswordHasher()


_DUMMY_HASH: str | None = None


def _dummy_hash() -> str:
    global _DUMMY_HASH
    if _DUMMY_HASH is None:
        _DUMMY_HASH = _hasher().hash(secrets.token_urlsafe(16))
    return _DUMMY_HASH


def _check_name(name: str) -> str:
    name = (name or "").strip()
    if not NAME.fullmatch(name):
        raise AccountError(f"name {name!r}: use letters, digits and . _ @ - (up to 80)")
    return name


def _check_password(password: str) -> str:
    if len(password or "") < MIN_PASSWORD:
        raise AccountError(f"password: at least {MIN_PASSWORD} characters")
    if len(password) > MAX_PASSWORD:
        raise AccountError(f"password: at most {MAX_PASSWORD} characters")
    return password


def _check_role(role: str) -> str:
    if role not in ROLES:
        raise AccountError(f"role {role!r}: one of {', '.join(ROLES)}")
    return role


def _user(session: Session, name: str) -> User:
    user = session.scalar(select(User).where(User.name == name))
    if user is None:
        raise AccountError(f"no user {name!r} (see `claimwatch users list`)")
    return user


def add_user(sessions: sessionmaker[Session], name: str, password: str,
             role: str = "reviewer") -> Account:
    name, role = _check_name(name), _check_role(role)
    digest = _hasher().hash(_check_password(password))
    with sessions.begin() as session:
        if session.scalar(select(User.id).where(User.name == name)) is not None:
            raise AccountError(f"user {name!r} exists already")
        user = User(name=name, role=role, password_hash=digest, created=utcnow(),
                    disabled=False)
        session.add(user)
        session.flush()
        return Account(user.id, user.name, user.role)


def set_password(sessions: sessionmaker[Session], name: str, password: str) -> None:
    digest = _hasher().hash(_check_password(password))
    with sessions.begin() as session:
        _user(session, name).password_hash = digest


def set_role(sessions: sessionmaker[Session], name: str, role: str) -> None:
    with sessions.begin() as session:
        _user(session, name).role = _check_role(role)


def remove_user(sessions: sessionmaker[Session], name: str) -> None:
    """Remove an account and its tokens (its recorded review actions stay, by name)."""
    with sessions.begin() as session:
        user = _user(session, name)
        for token in session.scalars(select(ApiToken).where(ApiToken.user_id == user.id)):
            session.delete(token)
        session.delete(user)


def list_users(sessions: sessionmaker[Session]) -> list[tuple[Account, datetime, int]]:
    with sessions() as session:
        tokens = dict(session.execute(
            select(ApiToken.user_id, func.count(ApiToken.id)).group_by(ApiToken.user_id)).all())
        return [(Account(u.id, u.name, u.role), u.created, int(tokens.get(u.id, 0)))
                for u in session.scalars(select(User).order_by(User.name))]


def has_accounts(session: Session) -> bool:
    return session.scalar(select(User.id).limit(1)) is not None


def check_password(session: Session, name: str, password: str) -> Account | None:
    """The account when ``password`` is right; None otherwise (same cost either way)."""
    from argon2.exceptions import InvalidHashError, VerificationError

    user = session.scalar(select(User).where(User.name == (name or "").strip()))
    hasher = _hasher()
    try:
        hasher.verify(user.password_hash if user else _dummy_hash(),
                      (password or "")[:MAX_PASSWORD])
    except (VerificationError, InvalidHashError):
        return None
    if user is None or user.disabled:
        return None
    if hasher.check_needs_rehash(user.password_hash):
        user.password_hash = hasher.hash(password)
    return Account(user.id, user.name, user.role)


def account(session: Session, user_id: int) -> Account | None:
    user = session.get(User, user_id)
    if user is None or user.disabled:
        return None
    return Account(user.id, user.name, user.role)


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "replace")).hexdigest()


def create_token(sessions: sessionmaker[Session], name: str, label: str = "api") -> str:
    """A new API token for ``name``: returned once, stored only as its hash."""
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    with sessions.begin() as session:
        user = _user(session, name)
        session.add(ApiToken(user_id=user.id, label=(label or "api")[:100],
                             token_hash=_token_hash(token), created=utcnow()))
    return token


def revoke_tokens(sessions: sessionmaker[Session], name: str) -> int:
    with sessions.begin() as session:
        user = _user(session, name)
        tokens = list(session.scalars(select(ApiToken).where(ApiToken.user_id == user.id)))
        for token in tokens:
            session.delete(token)
        return len(tokens)


def account_for_token(session: Session, token: str) -> Account | None:
    if not token.startswith(TOKEN_PREFIX) or len(token) > 200:
        return None
    row = session.execute(
        select(ApiToken, User).join(User, User.id == ApiToken.user_id)
        .where(ApiToken.token_hash == _token_hash(token))).first()
    if row is None or row.User.disabled:
        return None
    now = utcnow()
    if row.ApiToken.last_used is None or now - row.ApiToken.last_used > _TOUCH_EVERY:
        row.ApiToken.last_used = now
    return Account(row.User.id, row.User.name, row.User.role)


def record(session: Session, article_id: int, actor: str, action: str,
           **detail: Any) -> None:
    """One review action in the article's history (in the caller's transaction)."""
    session.add(ReviewEvent(article_id=article_id, actor=(actor or "unknown")[:120],
                            action=action[:40], detail={k: v for k, v in detail.items()
                                                        if v not in (None, "")},
                            at=utcnow()))


def history(session: Session, article_id: int, limit: int = 100) -> list[ReviewEvent]:
    return list(session.scalars(
        select(ReviewEvent).where(ReviewEvent.article_id == article_id)
        .order_by(ReviewEvent.at.desc(), ReviewEvent.id.desc()).limit(limit)))


def cli_actor() -> str:
    """Who runs a CLI review command: ``cli:<login name>``."""
    import getpass

    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):
        return "cli"
