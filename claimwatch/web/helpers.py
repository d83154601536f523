"""Small helpers the views share: reading arguments and form fields, building local
URLs, answering an action (a redirect with a flash, or JSON), and the formatting
filters the templates use. Scraped values are cleaned here (claimwatch/cleaner.py) and
escaped only by Jinja's autoescape."""

from __future__ import annotations

import json
import re
import unicodedata
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode, urlsplit

from flask import Response, g, redirect, request
from werkzeug.wrappers import Response as Answer  # a page, JSON or a redirect

from claimwatch.cleaner import clean
from claimwatch.web.errors import HTTPError
from claimwatch.web.state import desk

MAX_ID = 2**63 - 1  # the biggest id a database integer column holds
_SLUG = re.compile(r"[^a-z0-9]+")


# -- reading the request ---------------------------------------------------------------------

def arg(name: str, default: str = "") -> str:
    """A query parameter, trimmed (the first when repeated)."""
    value = request.args.get(name)
    return value.strip() if value is not None else default


def form_data() -> dict[str, list[str]]:
    """The POST body as lists of strings: a form or a JSON object; anything else is 415."""
    cached: dict[str, list[str]] | None = g.get("form_data")
    if cached is not None:
        return cached
    mimetype = request.mimetype
    if mimetype in ("", "application/x-www-form-urlencoded"):
        data = {k: request.form.getlist(k) for k in request.form}
    elif mimetype == "application/json":
        try:
            body = json.loads(request.get_data(as_text=True) or "{}")
        except (ValueError, RecursionError) as exc:  # RecursionError: nested too deep
            raise HTTPError(400, "the body is not valid JSON") from exc
        if not isinstance(body, dict):
            raise HTTPError(400, "the JSON body must be an object")
        data = {str(k): ["" if v is None else str(v)] for k, v in body.items()}
    else:
        raise HTTPError(415, "send application/x-www-form-urlencoded or application/json")
    g.form_data = data
    return data


def field(name: str, default: str = "") -> str:
    values = form_data().get(name)
    return values[0] if values else default


def int_arg(name: str, default: int, low: int = 1, high: int = 500) -> int:
    """A bounded whole number; a bad value is the default (the page forgives)."""
    try:
        return max(low, min(int(arg(name)), high))
    except ValueError:
        return default


def strict_int_arg(name: str, default: int, low: int = 0, high: int = MAX_ID) -> int:
    """A whole number in ``low..high``; anything else is a 400 (the API explains)."""
    value = arg(name)
    if value == "":
        return default
    try:
        number = int(value)
    except ValueError:
        raise HTTPError(400, f"query parameter {name!r} must be a whole number") from None
    if number < low or number > high:
        raise HTTPError(400, f"query parameter {name!r} must be {low}..{high}")
    return number


def wants_json() -> bool:
    return ("application/json" in request.headers.get("Accept", "")
            or request.path.endswith(".json") or request.path.startswith("/api/"))


def url(path: str, **params: Any) -> str:
    """A local URL under the app's mount point, with the non-empty ``params``."""
    kept = {k: v for k, v in params.items() if v not in ("", None)}
    return request.script_root + path + (("?" + urlencode(kept)) if kept else "")


def full_path() -> str:
    qs = request.query_string.decode("latin-1")
    return request.path + ("?" + qs if qs else "")


def safe_next(value: str, default: str) -> str:
    """A local path to go back to; anything else (other hosts, schemes) becomes ``default``."""
    value = value.strip()
    if (not value.startswith("/") or value.startswith("//") or "\\" in value
            or any(ord(ch) < 32 for ch in value)):
        return default
    parts = urlsplit(value)
    if parts.scheme or parts.netloc:
        return default
    return value


# -- answering -------------------------------------------------------------------------------

def json_response(data: Any, status: int = 200) -> Response:
    text = json.dumps(data, ensure_ascii=False, indent=1, default=_json_default)
    return Response(text + "\n", status, mimetype="application/json")


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime):
        return iso(value)
    return str(value)


def iso(value: datetime | None) -> str | None:
    if not value:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).isoformat()


def actor() -> str:
    return str(g.get("actor") or "unknown")


def session_id() -> str:
    return str(g.get("session_id") or "")


def done(message: str, data: Mapping[str, Any], default: str, kind: str = "ok",
         status: int = 200) -> Answer:
    """An action's answer: JSON when asked for, else a flash and a 303 back."""
    if wants_json():
        return json_response({"ok": kind == "ok", "message": message, **data}, status)
    desk().flash(session_id(), kind, message)
    return redirect(request.script_root + safe_next(field("next"), default), 303)


def fail(exc: Exception, default: str, status: int = 400) -> Answer:
    return done(str(exc), {"error": str(exc)}, default, "error", status)


# -- formatting (template filters) -----------------------------------------------------------

def fmt_dt(value: Any, missing: str = "—") -> str:
    if value is None or value == "":
        return missing
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            return clean(value)
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def plural(n: int, word: str, plural_form: str | None = None) -> str:
    return f"{n} {word if n == 1 else (plural_form or word + 's')}"


def short_title(value: Any, limit: int = 60) -> str:
    text = " ".join(clean(value).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def quoted(sentence: Any) -> str:
    """A sentence in curly quotes unless it is quoted already (plain text; escape it)."""
    text = clean(sentence).strip()
    if text[:1] in "\"“‘'" and text[-1:] in "\"”’'":
        return text
    return f"“{text}”"


def suggest_claim_id(sentence: str, words: int = 6) -> str:
    folded = unicodedata.normalize("NFKD", sentence.lower()).encode("ascii", "ignore").decode()
    ascii_text = re.sub(r"(?<=\d),(?=\d{3})", "", folded)
    parts = [p for p in _SLUG.split(ascii_text) if p][:words]
    return "-".join(parts)[:80] or "new-claim"
