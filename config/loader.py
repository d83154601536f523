"""Load and validate topic files (YAML) and claims tables (CSV or YAML).

Every problem is raised as a :class:`ConfigError` that names the file, where in
it (``line 7`` or a key path such as ``sources[1].kind``; list indexes count
from 0) and what is wrong, on one line.
"""

from __future__ import annotations

import codecs
import csv
import difflib
import io
import logging
import os
import re
import tempfile
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any, NoReturn
from urllib.parse import urlsplit

import yaml

from .cron import is_interval, normalize_schedule, parse_duration
from .models import NOTIFY_EVENTS, SOURCE_KINDS, Claim, NotifyTarget, Query, Source, Topic

__all__ = ["ConfigError", "append_claim", "load_claims", "load_topic"]

logger = logging.getLogger(__name__)

TOPIC_KEYS = ("name", "query", "claims", "sources", "serve_dir", "notify")
NOTIFY_KEYS = ("url", "events", "claims")
QUERY_KEYS = ("any", "all", "none", "and_any")
SOURCE_KEYS = ("name", "kind", "url", "schedule")  # any other key goes to Source.options
CLAIM_FIELDS = ("id", "text", "source", "first_reported", "aliases")
CLAIM_SUFFIXES = (".csv", ".yaml", ".yml")
SITE_PLACEHOLDER = "${SITE}"

_SLUG = re.compile(r"^[a-z0-9][a-z0-9_-]*$")
_CLAIM_ID = re.compile(r"^\S+$")
_ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_ISO_DATETIME = re.compile(r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}")

Key = str | int
KeyPath = tuple[Key, ...]


class ConfigError(Exception):
    """A topic file or claims table is missing, unreadable or invalid.

    ``path`` is the file as the caller named it, ``where`` is ``None``, a line
    (``"line 7"``) or a key path (``"sources[1].kind"``), ``problem`` says what
    is wrong and ``line`` is the 1-based line number when it is known.
    """

    def __init__(
        self, path: str | os.PathLike[str], where: str | None, problem: str, line: int | None = None
    ) -> None:
        self.path = os.fspath(path)
        self.where = where
        self.problem = problem
        self.line = line
        super().__init__(self.path, where, problem, line)

    def __str__(self) -> str:
        if self.where:
            return f"{self.path}: {self.where}: {self.problem}"
        return f"{self.path}: {self.problem}"


# ---------------------------------------------------------------------------
# Reading files
# ---------------------------------------------------------------------------


def _read_bytes(path: Path, shown: str) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise ConfigError(shown, None, "file not found") from None
    except IsADirectoryError:
        raise ConfigError(shown, None, "is a directory, not a file") from None
    except PermissionError:
        raise ConfigError(shown, None, "permission denied") from None
    except OSError as exc:
        raise ConfigError(shown, None, f"cannot read file: {exc.strerror or exc}") from None


def _decode(data: bytes, shown: str) -> str:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise ConfigError(
            shown,
            f"line {line}",
            f"not UTF-8 text (byte 0x{data[exc.start]:02x}); save it as UTF-8",
            line,
        ) from None


def _physical_lines(text: str) -> list[str]:
    """Lines with their endings, split the way the csv module counts them."""
    return io.StringIO(text, newline="").readlines()


# ---------------------------------------------------------------------------
# YAML with line numbers
# ---------------------------------------------------------------------------


def _where(keys: KeyPath) -> str:
    out = ""
    for key in keys:
        if isinstance(key, int):
            out += f"[{key}]"
        else:
            out += f".{key}" if out else key
    return out


@dataclass
class _Yaml:
    """A parsed YAML document plus its node tree, to put line numbers on errors."""

    shown: str
    data: Any
    root: yaml.Node | None

    def node(self, keys: KeyPath) -> yaml.Node | None:
        """The deepest node on ``keys`` that exists."""
        node = self.root
        for key in keys:
            child = None
            if isinstance(node, yaml.MappingNode) and isinstance(key, str):
                for key_node, value_node in node.value:
                    if isinstance(key_node, yaml.ScalarNode) and key_node.value == key:
                        child = value_node
            elif isinstance(node, yaml.SequenceNode) and isinstance(key, int):
                if 0 <= key < len(node.value):
                    child = node.value[key]
            if child is None:
                break
            node = child
        return node

    def line(self, keys: KeyPath) -> int | None:
        node = self.node(keys)
        return node.start_mark.line + 1 if node is not None else None

    def error(self, keys: KeyPath, problem: str) -> ConfigError:
        return ConfigError(self.shown, _where(keys) or None, problem, self.line(keys))


def _yaml_problem(exc: yaml.MarkedYAMLError) -> str:
    problem = exc.problem or exc.context or "cannot parse"
    mark = exc.problem_mark or exc.context_mark
    text = f"invalid YAML: {problem}"
    details = []
    if mark is not None:
        details.append(f"column {mark.column + 1}")
    context = exc.context_mark
    if exc.context and context is not None and mark is not None and context.line != mark.line:
        details.append(f"{exc.context} that starts on line {context.line + 1}")
    if details:
        text += f" ({'; '.join(details)})"
    if exc.context == "while scanning an alias":
        text += '; a value that starts with * must be quoted, e.g. schedule: "*/30 * * * *"'
    return text


def _check_duplicate_keys(root: yaml.Node, shown: str) -> None:
    seen_nodes: set[int] = set()
    stack = [root]
    while stack:
        node = stack.pop()
        if id(node) in seen_nodes:
            continue
        seen_nodes.add(id(node))
        if isinstance(node, yaml.MappingNode):
            first: dict[str, int] = {}
            for key_node, value_node in node.value:
                if isinstance(key_node, yaml.ScalarNode) and key_node.value != "<<":
                    line = key_node.start_mark.line + 1
                    if key_node.value in first:
                        raise ConfigError(
                            shown,
                            f"line {line}",
                            f"duplicate key '{key_node.value}'"
                            f" (first on line {first[key_node.value]})",
                            line,
                        )
                    first[key_node.value] = line
                stack.append(value_node)
        elif isinstance(node, yaml.SequenceNode):
            stack.extend(node.value)


def _bad_value_line(loader: yaml.SafeLoader, root: yaml.Node) -> int | None:
    """Find the scalar the constructor chokes on (``2022-13-45`` is read as a date)."""
    stack = [root]
    while stack:
        node = stack.pop()
        if isinstance(node, yaml.ScalarNode):
            try:
                loader.construct_object(node, deep=True)
            except (ValueError, yaml.YAMLError):
                return node.start_mark.line + 1
        elif isinstance(node, yaml.MappingNode):
            for pair in node.value:
                stack.extend(pair)
        elif isinstance(node, yaml.SequenceNode):
            stack.extend(node.value)
    return None


def _parse_yaml(text: str, shown: str) -> _Yaml:
    loader = yaml.SafeLoader(text)
    try:
        try:
            root = loader.get_single_node()
        except yaml.MarkedYAMLError as exc:
            mark = exc.problem_mark or exc.context_mark
            line = mark.line + 1 if mark is not None else None
            raise ConfigError(
                shown, f"line {line}" if line else None, _yaml_problem(exc), line
            ) from None
        except yaml.YAMLError as exc:
            raise ConfigError(shown, None, f"invalid YAML: {exc}") from None
        if root is None:
            return _Yaml(shown, None, None)
        _check_duplicate_keys(root, shown)
        try:
            data = loader.construct_document(root)
        except (ValueError, yaml.YAMLError) as exc:
            line = _bad_value_line(loader, root)
            detail = exc.problem if isinstance(exc, yaml.MarkedYAMLError) and exc.problem else exc
            raise ConfigError(
                shown,
                f"line {line}" if line else None,
                f"invalid YAML value: {detail}",
                line,
            ) from None
        return _Yaml(shown, data, root)
    finally:
        loader.dispose()


# ---------------------------------------------------------------------------
# Small validators
# ---------------------------------------------------------------------------


def _kind_of(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list | tuple):
        return "list"
    if isinstance(value, Mapping):
        return "mapping"
    if isinstance(value, datetime | date):
        return "date"
    return type(value).__name__


def _type_problem(expected: str, value: object) -> str:
    kind = _kind_of(value)
    if kind in ("boolean", "number", "date"):
        return f"must be {expected}, got {kind} {value!r} (quote it to make it a string)"
    return f"must be {expected}, got {kind}"


def _suggest(word: object, choices: Iterable[str]) -> str:
    close = difflib.get_close_matches(str(word), list(choices), n=1, cutoff=0.7)
    return f"; did you mean '{close[0]}'?" if close else ""


def _one_of(choices: Iterable[str]) -> str:
    items = list(choices)
    return ", ".join(items[:-1]) + " or " + items[-1] if len(items) > 1 else items[0]


def _url_problem(url: str, has_serve_dir: bool) -> str | None:
    if any(ch.isspace() for ch in url):
        return f"URL must not contain spaces: {url!r}"
    check = url
    if SITE_PLACEHOLDER in url:
        if not has_serve_dir:
            return f"uses {SITE_PLACEHOLDER} but the topic has no serve_dir"
        check = url.replace(SITE_PLACEHOLDER, "http://site.invalid")
    if "${" in check:
        return f"unknown placeholder in {url!r} (only {SITE_PLACEHOLDER} is supported)"
    parts = urlsplit(check)
    if parts.scheme in ("http", "https") and parts.netloc:
        return None
    if parts.scheme == "file" and parts.path:
        return None
    return f"expected an http(s):// or file:// URL, got {url!r}"


# ---------------------------------------------------------------------------
# Topics
# ---------------------------------------------------------------------------


def _display_join(shown: str, relative: str) -> str:
    if os.path.isabs(relative):
        return relative
    return os.path.normpath(os.path.join(os.path.dirname(shown), relative))


def load_topic(path: str | os.PathLike[str]) -> Topic:
    """Load a topic file and the claims table it names.

    Relative ``claims`` and ``serve_dir`` paths are resolved against the topic
    file's directory; ``Topic.path``, ``claims_path`` and ``serve_dir`` are
    absolute. Raises :class:`ConfigError`.
    """
    shown = os.fspath(path)
    file_path = Path(os.path.abspath(shown))
    doc = _parse_yaml(_decode(_read_bytes(file_path, shown), shown), shown)
    data = doc.data
    if data is None:
        raise ConfigError(
            shown,
            None,
            "empty topic file (expected a mapping with name, query, claims and sources)",
        )
    if not isinstance(data, dict):
        raise ConfigError(
            shown, None, f"the top level must be a mapping of keys, got {_kind_of(data)}", 1
        )

    for key in data:
        if key not in TOPIC_KEYS:
            raise doc.error(
                (str(key),),
                f"unknown key '{key}' (expected {_one_of(TOPIC_KEYS)}){_suggest(key, TOPIC_KEYS)}",
            )

    name = _required_slug(doc, data, (), "name")
    query = _load_query(doc, data.get("query"))

    base = file_path.parent
    serve_dir: Path | None = None
    if data.get("serve_dir") is not None:
        value = data["serve_dir"]
        if not isinstance(value, str) or not value.strip():
            raise doc.error(("serve_dir",), _type_problem("a directory path", value))
        serve_dir = Path(os.path.normpath(base / value.strip()))
        if not serve_dir.is_dir():
            raise doc.error(("serve_dir",), f"directory not found: {serve_dir}")

    sources = _load_sources(doc, data, serve_dir is not None)

    claims_path: Path | None = None
    claims: tuple[Claim, ...] = ()
    if data.get("claims") is not None:
        value = data["claims"]
        if not isinstance(value, str) or not value.strip():
            raise doc.error(
                ("claims",), _type_problem("the path of a claims table (.csv or .yaml)", value)
            )
        claims_path = Path(os.path.normpath(base / value.strip()))
        if claims_path.suffix.lower() not in CLAIM_SUFFIXES:
            raise doc.error(
                ("claims",),
                f"unsupported claims file type '{claims_path.suffix}'"
                " (expected .csv, .yaml or .yml)",
            )
        if not claims_path.is_file():
            raise doc.error(("claims",), f"claims file not found: {claims_path}")
        claims = _load_claims_shown(claims_path, _display_join(shown, value.strip()))

    notify = _load_notify(doc, data.get("notify"), claims)

    topic = Topic(
        name=name,
        path=file_path,
        query=query,
        claims_path=claims_path,
        claims=claims,
        sources=sources,
        serve_dir=serve_dir,
        notify=notify,
    )
    logger.debug(
        "loaded topic %s from %s: %d sources, %d claims", name, shown, len(sources), len(claims)
    )
    return topic


_NOTIFY_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://\S")
_ENV_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


def _expand_env(doc: _Yaml, at: KeyPath, value: str) -> str:
    """``${NAME}`` from the environment, so secrets stay out of the topic file."""

    def one(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in os.environ:
            raise doc.error(at, f"environment variable {name} is not set")
        return os.environ[name]

    return _ENV_VAR.sub(one, value)


def _load_notify(doc: _Yaml, value: object, claims: tuple[Claim, ...]) -> tuple[NotifyTarget, ...]:
    """``notify``: a list of Apprise URLs, or of {url, events, claims} mappings."""
    if value is None:
        return ()
    if not isinstance(value, list):
        raise doc.error(("notify",), _type_problem(
            "a list of notification URLs or {url, events, claims} mappings", value))
    claim_ids = {c.id for c in claims}
    targets = []
    for i, item in enumerate(value):
        at: KeyPath = ("notify", i)
        if isinstance(item, str):
            item = {"url": item}
        if not isinstance(item, dict):
            raise doc.error(at, _type_problem("a URL or a mapping with url", item))
        for key in item:
            if key not in NOTIFY_KEYS:
                raise doc.error((*at, str(key)), f"unknown key '{key}' (expected "
                                f"{_one_of(NOTIFY_KEYS)}){_suggest(key, NOTIFY_KEYS)}")
        url = _required_str(doc, item, at, "url", "a notification URL")
        if not _NOTIFY_URL.match(url.strip()):
            raise doc.error((*at, "url"), "not a notification URL (expected scheme://..., "
                            "e.g. slack://..., json://host/path, mailto://...)")
        events = item.get("events", list(NOTIFY_EVENTS))
        if isinstance(events, str):
            events = [events]
        if not isinstance(events, list) or not events:
            raise doc.error((*at, "events"), _type_problem("a list of events", events))
        for event in events:
            if event not in NOTIFY_EVENTS:
                raise doc.error((*at, "events"), f"unknown event {event!r} (expected "
                                f"{_one_of(NOTIFY_EVENTS)}){_suggest(event, NOTIFY_EVENTS)}")
        watched = item.get("claims", [])
        if isinstance(watched, str):
            watched = [watched]
        if not isinstance(watched, list):
            raise doc.error((*at, "claims"), _type_problem("a list of claim ids", watched))
        for claim_id in watched:
            if str(claim_id) not in claim_ids:
                raise doc.error((*at, "claims"), f"no claim {claim_id!r} in the claims table"
                                f"{_suggest(str(claim_id), claim_ids)}")
        targets.append(NotifyTarget(
            url=_expand_env(doc, (*at, "url"), url.strip()), events=tuple(dict.fromkeys(events)),
            claims=tuple(str(c) for c in watched), shown=url.strip()))
    return tuple(targets)


def _required_str(doc: _Yaml, mapping: dict[Any, Any], at: KeyPath, key: str, what: str) -> str:
    if key not in mapping:
        raise doc.error(at, f"missing required key '{key}'")
    value = mapping[key]
    if not isinstance(value, str):
        raise doc.error((*at, key), _type_problem(what, value))
    value = value.strip()
    if not value:
        raise doc.error((*at, key), "must not be empty")
    return value


def _required_slug(doc: _Yaml, mapping: dict[Any, Any], at: KeyPath, key: str) -> str:
    value = _required_str(doc, mapping, at, key, "a string")
    if not _SLUG.match(value):
        raise doc.error(
            (*at, key),
            "must be a slug (lowercase letters, digits, '-' and '_',"
            f" starting with a letter or digit), got {value!r}",
        )
    return value


def _load_query(doc: _Yaml, value: object) -> Query:
    if value is None:
        return Query()
    if not isinstance(value, dict):
        raise doc.error(
            ("query",), _type_problem("a mapping with any, all, none and and_any lists", value)
        )
    terms: dict[str, tuple[str, ...]] = {}
    for key, items in value.items():
        if key not in QUERY_KEYS:
            raise doc.error(
                ("query", str(key)),
                f"unknown query key '{key}'"
                f" (expected {_one_of(QUERY_KEYS)}){_suggest(key, QUERY_KEYS)}",
            )
        if items is None:
            terms[key] = ()
            continue
        if not isinstance(items, list):
            hint = f'; write {key}: ["{items}"]' if isinstance(items, str) else ""
            raise doc.error(("query", key), _type_problem("a list of strings", items) + hint)
        found: list[str] = []
        for i, item in enumerate(items):
            if not isinstance(item, str):
                raise doc.error(("query", key, i), _type_problem("a string", item))
            item = item.strip()
            if not item:
                raise doc.error(("query", key, i), "must not be empty")
            if item not in found:
                found.append(item)
        terms[key] = tuple(found)
    return Query(**terms)


def _load_sources(doc: _Yaml, data: dict[Any, Any], has_serve_dir: bool) -> tuple[Source, ...]:
    if "sources" not in data:
        raise ConfigError(
            doc.shown, None, "missing required key 'sources' (at least one source is required)"
        )
    items = data["sources"]
    if items is None or items == []:
        raise doc.error(("sources",), "at least one source is required")
    if not isinstance(items, list):
        raise doc.error(("sources",), _type_problem("a list of sources", items))
    sources: list[Source] = []
    first_index: dict[str, int] = {}
    for i, item in enumerate(items):
        at: KeyPath = ("sources", i)
        if not isinstance(item, dict):
            raise doc.error(at, _type_problem("a mapping with name, kind and url", item))
        for key in item:
            if not isinstance(key, str):
                raise doc.error(at, f"keys must be strings, got {_kind_of(key)} {key!r}")
        name = _required_slug(doc, item, at, "name")
        if name in first_index:
            raise doc.error(
                (*at, "name"),
                f"duplicate source name '{name}' (first used by sources[{first_index[name]}])",
            )
        first_index[name] = i

        kind = _required_str(doc, item, at, "kind", "a string")
        if kind not in SOURCE_KINDS:
            raise doc.error(
                (*at, "kind"), f"unknown source kind '{kind}' (expected {_one_of(SOURCE_KINDS)})"
            )

        url = _required_str(doc, item, at, "url", "a URL string")
        problem = _url_problem(url, has_serve_dir)
        if problem:
            raise doc.error((*at, "url"), problem)

        schedule: str | None = None
        if item.get("schedule") is not None:
            value = item["schedule"]
            if not isinstance(value, str):
                raise doc.error(
                    (*at, "schedule"),
                    _type_problem('a cron expression such as "0 * * * *" or "every 30m"', value),
                )
            try:
                schedule = normalize_schedule(value)
            except ValueError as exc:
                what = "interval schedule" if is_interval(value) else "cron expression"
                raise doc.error((*at, "schedule"), f"invalid {what} {value!r}: {exc}") from None

        options = {key: value for key, value in item.items() if key not in SOURCE_KEYS}
        for key in options:
            close = difflib.get_close_matches(key, SOURCE_KEYS, n=1, cutoff=0.8)
            if close:
                logger.warning(
                    "%s: %s: option '%s' looks like a misspelled '%s'",
                    doc.shown,
                    _where(at),
                    key,
                    close[0],
                )
            problem = _option_problem(key, options[key])
            if problem:
                raise doc.error((*at, key), problem)
        sources.append(Source(name=name, kind=kind, url=url, schedule=schedule, options=options))
    return tuple(sources)


#: How long after its first fetch an article is revisited for edits, unless the source
#: sets ``revisit`` (a duration, or false for never).
DEFAULT_REVISIT = "3d"


def revisit_window(source: Source) -> timedelta | None:
    """The source's revisit window (validated at load time), or None when it is off."""
    value = source.options.get("revisit", DEFAULT_REVISIT)
    if value is False or value is None:
        return None
    return parse_duration(value)  # type: ignore[arg-type]


def _option_problem(key: str, value: object) -> str | None:
    """What is wrong with a source option's value (checked when the topic is loaded, so
    ``serve`` and ``daemon`` refuse the file at start, not a crawl hours later), or None.
    The crawler reads the options; unknown ones are warned about there."""
    number = isinstance(value, int | float) and not isinstance(value, bool)
    if key == "max_depth":
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            return ("max_depth must be a whole number >= 1 (1 = the articles linked from the "
                    f"page), got {value!r}")
    elif key == "lastmod_days":
        days = float(value) if number else 0.0  # type: ignore[arg-type]
        if value is not None and not 0 < days < float("inf"):  # also refuses NaN
            return ("lastmod_days must be a positive number of days or null (no window), "
                    f"got {value!r}")
    elif key == "revisit":
        if value is False or value is None:
            return None  # revisits off for this source
        return _duration_problem(key, value, number, "3d or 12h, or false", " (or false)")
    elif key == "allow_offsite":
        if not isinstance(value, bool):
            return f"allow_offsite must be true or false, got {value!r}"
    elif key == "timeout":
        return _duration_problem(key, value, number, "90s, 10m or 1h")
    return None


def _duration_problem(key: str, value: object, number: bool, examples: str,
                      positive_or: str = "") -> str | None:
    """What is wrong with a source option that must be a positive duration, if anything."""
    if not number and not isinstance(value, str):
        return f"{key} must be a duration such as {examples}, got {value!r}"
    try:
        duration = parse_duration(value)  # type: ignore[arg-type]
    except (ValueError, OverflowError) as exc:
        return f"{key}: {exc}"
    if duration.total_seconds() <= 0:
        return f"{key} must be positive{positive_or}, got {value!r}"
    return None


# ---------------------------------------------------------------------------
# Claims
# ---------------------------------------------------------------------------

# Raises a ConfigError for a claim field: (field, problem) -> NoReturn
_Fail = Callable[[str, str], NoReturn]


def _clean_text(value: str) -> str:
    return " ".join(value.split())


def _iso_date(value: object) -> str | None:
    """``first_reported`` as an ISO string, or None when it is not an ISO date."""
    if isinstance(value, datetime | date):
        return value.isoformat()
    if not isinstance(value, str):
        return None
    text = value.strip()
    try:
        if _ISO_DATE.match(text):
            date.fromisoformat(text)
            return text
        if _ISO_DATETIME.match(text):
            datetime.fromisoformat(text)
            return text
    except ValueError:
        return None
    return None


def _build_claim(fields: Mapping[str, object], fail: _Fail, alias_strings: bool) -> Claim:
    """Validate one claim's fields (already stripped of unknown keys)."""
    raw_id = fields.get("id")
    if isinstance(raw_id, int) and not isinstance(raw_id, bool):
        raw_id = str(raw_id)
    if raw_id is None or raw_id == "":
        fail("id", "empty id")
    if not isinstance(raw_id, str):
        fail("id", "id " + _type_problem("a string", raw_id))
    claim_id = raw_id.strip()
    if not claim_id:
        fail("id", "empty id")
    if not _CLAIM_ID.match(claim_id):
        fail("id", f"id must not contain spaces, got {claim_id!r}")

    raw_text = fields.get("text")
    if raw_text is None or raw_text == "":
        fail("text", f"empty text for claim '{claim_id}'")
    if not isinstance(raw_text, str):
        fail("text", "text " + _type_problem("a string", raw_text))
    text = _clean_text(raw_text)
    if not text:
        fail("text", f"empty text for claim '{claim_id}'")

    raw_source = fields.get("source")
    if raw_source is not None and not isinstance(raw_source, str):
        fail("source", "source " + _type_problem("a string", raw_source))
    source = _clean_text(raw_source) if raw_source else ""

    raw_date = fields.get("first_reported")
    first_reported: str | None = None
    if raw_date not in (None, ""):
        first_reported = _iso_date(raw_date)
        if first_reported is None:
            fail(
                "first_reported",
                "first_reported must be an ISO date (YYYY-MM-DD or YYYY-MM-DDTHH:MM:SS),"
                f" got {raw_date!r}",
            )

    raw_aliases = fields.get("aliases")
    parts: list[object]
    if raw_aliases in (None, ""):
        parts = []
    elif isinstance(raw_aliases, str):
        parts = list(raw_aliases.split("|"))
    elif isinstance(raw_aliases, list) and not alias_strings:
        parts = list(raw_aliases)
    else:
        fail(
            "aliases",
            "aliases " + _type_problem("a list of strings or a '|'-separated string", raw_aliases),
        )
    aliases: list[str] = []
    for part in parts:
        if not isinstance(part, str):
            fail("aliases", "each alias " + _type_problem("a string", part))
        alias = _clean_text(part)
        if alias and alias != text and alias not in aliases:
            aliases.append(alias)

    return Claim(
        id=claim_id,
        text=text,
        source=source or None,
        first_reported=first_reported,
        aliases=tuple(aliases),
    )


def _warn_unknown(shown: str, where: str, names: Iterable[str]) -> None:
    unknown = [name or "(unnamed)" for name in names if name not in CLAIM_FIELDS]
    if unknown:
        logger.warning(
            "%s: %s: ignoring unknown claims column(s) %s (known: %s)",
            shown,
            where,
            ", ".join(unknown),
            ", ".join(CLAIM_FIELDS),
        )


@dataclass
class _Table:
    """A parsed claims table: claims, the line each starts on and (CSV) the header."""

    claims: tuple[Claim, ...]
    lines: dict[str, int]
    header: list[str] | None = None
    header_line: int | None = None  # last physical line of the CSV header
    doc: _Yaml | None = None


def _parse_csv(text: str, shown: str) -> _Table:
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    header: list[str] | None = None
    header_line: int | None = None
    claims: list[Claim] = []
    lines: dict[str, int] = {}
    previous = 0
    while True:
        start = previous + 1
        try:
            row = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            problem = str(exc)
            if problem == "unexpected end of data":
                problem = "a quoted field opened here is never closed"
            raise ConfigError(shown, f"line {start}", f"invalid CSV: {problem}", start) from None
        previous = reader.line_num
        if not any(cell.strip() for cell in row):
            continue  # blank line
        where = f"line {start}"
        if header is None:
            header = [cell.strip().lower() for cell in row]
            header_line = previous
            seen: set[str] = set()
            for name in header:
                if name and name in seen:
                    raise ConfigError(
                        shown, where, f"duplicate column '{name}' in the header", start
                    )
                seen.add(name)
            for required in ("id", "text"):
                if required not in header:
                    found = ", ".join(name or "(unnamed)" for name in header)
                    raise ConfigError(
                        shown,
                        where,
                        f"missing required column '{required}'"
                        f" (the header must name id and text; found: {found})",
                        start,
                    )
            _warn_unknown(shown, where, header)
            continue
        if len(row) > len(header) and any(cell.strip() for cell in row[len(header) :]):
            raise ConfigError(
                shown,
                where,
                f"row has {len(row)} fields but the header has {len(header)} "
                "(put text that contains commas in double quotes)",
                start,
            )
        fields = {
            name: csv_unsafe(row[i])
            for i, name in enumerate(header) if name in CLAIM_FIELDS and i < len(row)
        }

        def fail(field: str, problem: str, _where: str = where, _line: int = start) -> NoReturn:
            raise ConfigError(shown, _where, problem, _line)

        claim = _build_claim(fields, fail, alias_strings=True)
        if claim.id in lines:
            raise ConfigError(
                shown,
                where,
                f"duplicate claim id '{claim.id}' (first on line {lines[claim.id]})",
                start,
            )
        lines[claim.id] = start
        claims.append(claim)
    if header is None:
        raise ConfigError(
            shown,
            None,
            "empty claims table (expected a header line: id,text,source,first_reported,aliases)",
        )
    return _Table(tuple(claims), lines, header, header_line)


def _claims_items(doc: _Yaml) -> tuple[list[Any], KeyPath]:
    data = doc.data
    if data is None:
        return [], ()
    if isinstance(data, list):
        return data, ()
    if isinstance(data, dict):
        for key in data:
            if key != "claims":
                raise doc.error(
                    (str(key),),
                    f"unknown key '{key}'"
                    " (a claims file holds a list, or a mapping with one key: claims)",
                )
        items = data.get("claims")
        if items is None:
            return [], ("claims",)
        if not isinstance(items, list):
            raise doc.error(("claims",), _type_problem("a list of claims", items))
        return items, ("claims",)
    raise ConfigError(
        doc.shown,
        None,
        f"expected a list of claims or a mapping with a 'claims' list, got {_kind_of(data)}",
        1,
    )


def _parse_yaml_claims(text: str, shown: str) -> _Table:
    doc = _parse_yaml(text, shown)
    items, at = _claims_items(doc)
    claims: list[Claim] = []
    lines: dict[str, int] = {}
    for i, item in enumerate(items):
        item_at: KeyPath = (*at, i)
        if not isinstance(item, dict):
            raise doc.error(item_at, _type_problem("a mapping with id and text", item))
        names = [str(key) for key in item]
        _warn_unknown(shown, _where(item_at), names)
        fields = {str(key): value for key, value in item.items() if key in CLAIM_FIELDS}

        def fail(field: str, problem: str, _at: KeyPath = item_at) -> NoReturn:
            raise doc.error((*_at, field), problem)

        claim = _build_claim(fields, fail, alias_strings=False)
        line = doc.line(item_at) or 0
        if claim.id in lines:
            raise doc.error(
                (*item_at, "id"),
                f"duplicate claim id '{claim.id}' (first on line {lines[claim.id]})",
            )
        lines[claim.id] = line
        claims.append(claim)
    return _Table(tuple(claims), lines, doc=doc)


def _claims_format(path: Path, shown: str) -> str:
    suffix = path.suffix.lower()
    if suffix not in CLAIM_SUFFIXES:
        raise ConfigError(
            shown,
            None,
            f"unsupported claims file type '{path.suffix}' (expected .csv, .yaml or .yml)",
        )
    return "csv" if suffix == ".csv" else "yaml"


def _parse_claims(text: str, shown: str, fmt: str) -> _Table:
    return _parse_csv(text, shown) if fmt == "csv" else _parse_yaml_claims(text, shown)


def load_claims(path: str | os.PathLike[str]) -> tuple[Claim, ...]:
    """Load a claims table, CSV or YAML by extension. Raises :class:`ConfigError`."""
    return _load_claims_shown(Path(path), os.fspath(path))


def _load_claims_shown(path: Path, shown: str) -> tuple[Claim, ...]:
    fmt = _claims_format(path, shown)
    table = _parse_claims(_decode(_read_bytes(path, shown), shown), shown, fmt)
    logger.debug("loaded %d claims from %s", len(table.claims), shown)
    return table.claims


# ---------------------------------------------------------------------------
# Appending a claim
# ---------------------------------------------------------------------------


def _claim_row(claim: Claim) -> dict[str, str]:
    return {
        "id": claim.id,
        "text": claim.text,
        "source": claim.source or "",
        "first_reported": claim.first_reported or "",
        "aliases": "|".join(claim.aliases),
    }


def _claim_mapping(claim: Claim) -> dict[str, object]:
    out: dict[str, object] = {"id": claim.id, "text": claim.text}
    if claim.source:
        out["source"] = claim.source
    if claim.first_reported:
        out["first_reported"] = claim.first_reported
    if claim.aliases:
        out["aliases"] = list(claim.aliases)
    return out


def _line_ending(lines: list[str]) -> str:
    for line in lines:
        if line.endswith("\r\n"):
            return "\r\n"
        if line.endswith(("\n", "\r")):
            return line[-1]
    return "\n"


# A cell a spreadsheet would run as a formula (=HYPERLINK(...), +1, -1, @SUM, a leading
# tab or carriage return) is written with a leading apostrophe, as OWASP advises for CSV
# injection; reading a claims table drops that apostrophe again, so the text round-trips.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def csv_safe(value: str) -> str:
    """``value`` for a CSV cell a spreadsheet shows as text (``'=1+1`` for ``=1+1``)."""
    # '=x (already quoted by hand) gets its own apostrophe too, so it reads back as '=x
    return "'" + value if value.lstrip("'").startswith(FORMULA_STARTS) else value


def csv_unsafe(value: str) -> str:
    """The inverse of :func:`csv_safe`, for cells read back from a claims table."""
    if value.startswith("'") and value[1:].lstrip("'").startswith(FORMULA_STARTS):
        return value[1:]
    return value


def _csv_line(values: list[str], newline: str) -> str:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator=newline).writerow([csv_safe(v) for v in values])
    return buffer.getvalue()


def _append_csv(text: str, table: _Table | None, claim: Claim) -> str:
    row = _claim_row(claim)
    lines = _physical_lines(text)
    newline = _line_ending(lines)
    if table is None or table.header is None or table.header_line is None:
        # no header yet: keep whatever blank lines there are and start the table
        body = "".join(lines)
        if body and not body.endswith(("\n", "\r")):
            body += newline
        return (
            body + _csv_line(list(CLAIM_FIELDS), newline) + _csv_line(list(row.values()), newline)
        )

    header = list(table.header)
    missing = [name for name in CLAIM_FIELDS if row[name] and name not in header]
    if missing:
        # Add the columns to the header only; shorter rows read as empty fields.
        index = table.header_line - 1
        last = lines[index]
        stripped = last.rstrip("\r\n")
        lines[index] = stripped + "," + ",".join(missing) + last[len(stripped) :]
        header += missing
    body = "".join(lines)
    if body and not body.endswith(("\n", "\r")):
        body += newline
    return body + _csv_line([row.get(name, "") for name in header], newline)


def _append_yaml(text: str, table: _Table | None, claim: Claim) -> str:
    item = _claim_mapping(claim)
    newline = _line_ending(_physical_lines(text))
    doc = table.doc if table is not None else None
    root = doc.root if doc is not None else None
    seq: yaml.Node | None = None
    in_place = False
    if root is None:
        in_place = True  # empty or comments only: start a top-level list
    elif isinstance(root, yaml.SequenceNode):
        seq = root
    elif isinstance(root, yaml.MappingNode) and root.flow_style is not True and root.value:
        key_node, value_node = root.value[-1]
        if isinstance(key_node, yaml.ScalarNode) and key_node.value == "claims":
            seq = value_node
    if isinstance(seq, yaml.SequenceNode) and seq.flow_style is not True and seq.value:
        in_place = True

    if in_place:
        indent = " " * (seq.start_mark.column if seq is not None else 0)
        dumped = yaml.safe_dump(
            [item], sort_keys=False, allow_unicode=True, default_flow_style=False, width=4096
        )
        block = "".join(indent + line + newline for line in dumped.splitlines())
        body = text
        if body and not body.endswith(("\n", "\r")):
            body += newline
        return body + block

    # Flow style, an empty list or claims not last: rewrite the whole document.
    data = doc.data if doc is not None else None
    if isinstance(data, dict):
        data = dict(data)
        data["claims"] = [*(data.get("claims") or []), item]
    else:
        data = [*(data or []), item]
    logger.warning(
        "%s: rewrote the claims file in block style to append claim '%s'; comments were not kept",
        doc.shown if doc is not None else "claims file",
        claim.id,
    )
    dumped = yaml.safe_dump(
        data, sort_keys=False, allow_unicode=True, default_flow_style=False, width=4096
    )
    return dumped.replace("\n", newline)


def _atomic_write(path: Path, data: bytes, shown: str) -> None:
    try:
        mode = path.stat().st_mode & 0o7777
    except FileNotFoundError:
        mode = 0o644
    tmp: str | None = None
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
        tmp = None
    except OSError as exc:
        raise ConfigError(shown, None, f"cannot write file: {exc.strerror or exc}") from None
    finally:
        if tmp is not None:
            try:
                os.unlink(tmp)
            except OSError:
                pass
    try:  # make the rename itself durable; not possible everywhere
        dir_fd = os.open(path.parent, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(dir_fd)
    except OSError:
        pass
    finally:
        os.close(dir_fd)


def append_claim(path: str | os.PathLike[str], claim: Claim) -> None:
    """Append ``claim`` to a CSV or YAML claims table, atomically.

    Existing rows are kept byte for byte (a CSV header may gain the optional
    columns the new claim needs). The file is created when missing. Refuses an
    invalid claim or a duplicate id with :class:`ConfigError`; on any error
    the file is left unchanged.
    """
    shown = os.fspath(path)
    file_path = Path(path)
    fmt = _claims_format(file_path, shown)

    def fail(field: str, problem: str) -> NoReturn:
        raise ConfigError(shown, None, f"cannot append claim: {problem}")

    fields = {
        "id": claim.id,
        "text": claim.text,
        "source": claim.source,
        "first_reported": claim.first_reported,
        "aliases": list(claim.aliases),
    }
    claim = _build_claim(fields, fail, alias_strings=False)
    if fmt == "csv" and any("|" in alias for alias in claim.aliases):
        fail("aliases", "an alias must not contain '|' in a CSV table (it separates aliases)")

    raw = b""
    if file_path.exists():
        raw = _read_bytes(file_path, shown)
    bom = raw.startswith(codecs.BOM_UTF8)
    text = _decode(raw, shown)

    table: _Table | None = None
    if text.strip():
        try:
            table = _parse_claims(text, shown, fmt)
        except ConfigError as exc:
            if not (fmt == "csv" and exc.problem.startswith("empty claims table")):
                raise
    if table is not None and claim.id in table.lines:
        raise ConfigError(
            shown,
            None,
            f"duplicate claim id '{claim.id}' (first on line {table.lines[claim.id]})",
        )

    new_text = _append_csv(text, table, claim) if fmt == "csv" else _append_yaml(text, table, claim)

    # Never write a table that does not read back as the old claims plus the new one.
    old = table.claims if table is not None else ()
    try:
        check = _parse_claims(new_text, shown, fmt).claims
    except ConfigError as exc:
        raise ConfigError(
            shown, None, f"cannot append claim '{claim.id}' safely: {exc.problem}"
        ) from None
    if check != (*old, claim):
        raise ConfigError(
            shown, None, f"cannot append claim '{claim.id}' safely: the table would not read back"
        )

    data = new_text.encode("utf-8")
    if bom:
        data = codecs.BOM_UTF8 + data
    _atomic_write(file_path, data, shown)
    logger.info("appended claim %s to %s", claim.id, shown)
