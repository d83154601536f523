"""Source schedules: 5-field cron expressions or intervals, and APScheduler 3 triggers.

Topic files use ordinary crontab syntax (``minute hour day-of-month month
day-of-week``, Sunday is 0 or 7). APScheduler 3 reads that syntax slightly
differently: ``CronTrigger.from_crontab`` treats day-of-week 0 as *Monday*,
rejects 7, and requires both day fields to match when crontab requires either.
:func:`cron_trigger` builds a trigger with crontab's meaning, so always use it
instead of ``CronTrigger.from_crontab``.

A schedule may also be an interval, ``every <N><s|m|h|d>`` (``every 30m``):
:func:`normalize_schedule` validates either form and :func:`schedule_trigger`
builds the trigger for it.
"""

from __future__ import annotations

import calendar
import re
from dataclasses import dataclass
from datetime import timedelta

from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.combining import OrTrigger
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

__all__ = [
    "CronSpec",
    "cron_trigger",
    "is_interval",
    "normalize_cron",
    "normalize_schedule",
    "parse_cron",
    "parse_duration",
    "parse_interval",
    "schedule_trigger",
]

MACROS = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}

_MONTHS = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
_DAYS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")  # crontab numbering: sun = 0


@dataclass(frozen=True)
class _Field:
    name: str
    low: int
    high: int
    names: tuple[str, ...] = ()
    names_start: int = 0


_FIELDS = (
    _Field("minute", 0, 59),
    _Field("hour", 0, 23),
    _Field("day of month", 1, 31),
    _Field("month", 1, 12, _MONTHS, 1),
    _Field("day of week", 0, 7, _DAYS, 0),
)

_ITEM = re.compile(
    r"^(?:(?P<star>\*)|(?P<first>[0-9a-z]+)(?:-(?P<last>[0-9a-z]+))?)(?:/(?P<step>[0-9]+))?$",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class CronSpec:
    """A validated crontab expression, expanded to the values each field allows."""

    expression: str  # normalized: five fields separated by single spaces
    minutes: frozenset[int]
    hours: frozenset[int]
    days: frozenset[int]
    months: frozenset[int]
    weekdays: frozenset[int]  # crontab numbering, 0 = Sunday (7 is folded into 0)
    day_restricted: bool  # the day-of-month field does not start with '*'
    weekday_restricted: bool  # the day-of-week field does not start with '*'


def _value(token: str, field: _Field) -> int:
    if token.isdigit():
        value = int(token)
    elif token.lower() in field.names:
        value = field.names.index(token.lower()) + field.names_start
    else:
        raise ValueError(f"{field.name} field: {token!r} is not a number or a known name")
    if not field.low <= value <= field.high:
        raise ValueError(f"{field.name} field: {value} is out of range {field.low}-{field.high}")
    return value


def _expand(text: str, field: _Field) -> frozenset[int]:
    values: set[int] = set()
    for item in text.split(","):
        match = _ITEM.match(item)
        if not match:
            raise ValueError(f"{field.name} field: cannot read {item!r}")
        step = int(match["step"]) if match["step"] else 1
        if step == 0:
            raise ValueError(f"{field.name} field: step must be at least 1 in {item!r}")
        if match["star"]:
            first, last = field.low, field.high
            if field.high == 7:  # '*' in day of week means 0-6, not 0-7
                last = 6
        else:
            first = _value(match["first"], field)
            if match["last"] is not None:
                last = _value(match["last"], field)
            elif match["step"]:
                last = field.high  # '5/15' means 5-59/15, as in Vixie cron
            else:
                last = first
            if last < first:
                raise ValueError(f"{field.name} field: range {item!r} runs backwards")
        values.update(range(first, last + 1, step))
    if field.high == 7 and 7 in values:
        values.discard(7)
        values.add(0)
    return frozenset(values)


def parse_cron(expression: str) -> CronSpec:
    """Validate a crontab expression (or an ``@daily``-style macro).

    Raises ``ValueError`` with a one-line reason when it is not valid or can
    never fire (``0 0 31 2 *``).
    """
    if not isinstance(expression, str):
        raise ValueError(f"expected a string, got {type(expression).__name__}")
    text = expression.strip()
    if not text:
        raise ValueError("empty cron expression")
    if text.startswith("@"):
        text = text.lower()
        if text not in MACROS:
            known = ", ".join(MACROS)
            raise ValueError(f"unknown cron macro {text!r} (known: {known})")
        text = MACROS[text]
    parts = text.split()
    if len(parts) != 5:
        raise ValueError(
            f"expected 5 fields (minute hour day-of-month month day-of-week), got {len(parts)}"
        )
    minutes, hours, days, months, weekdays = (
        _expand(part, field) for part, field in zip(parts, _FIELDS, strict=True)
    )
    spec = CronSpec(
        expression=" ".join(parts).lower(),
        minutes=minutes,
        hours=hours,
        days=days,
        months=months,
        weekdays=weekdays,
        day_restricted=not parts[2].startswith("*"),
        weekday_restricted=not parts[4].startswith("*"),
    )
    if not _can_fire(spec):
        raise ValueError("never fires: no date matches the day-of-month, month and day-of-week")
    return spec


def normalize_cron(expression: str) -> str:
    """Return the expression validated and normalized (macros expanded, single spaces)."""
    return parse_cron(expression).expression


def _can_fire(spec: CronSpec) -> bool:
    if spec.day_restricted and spec.weekday_restricted:
        return True  # crontab fires when either day field matches
    # Both day fields must match. Years 2000-2027 contain every calendar layout.
    for year in range(2000, 2028):
        for month in spec.months:
            days_in_month = calendar.monthrange(year, month)[1]
            for day in spec.days:
                if day <= days_in_month:
                    weekday = (calendar.weekday(year, month, day) + 1) % 7  # to sun = 0
                    if weekday in spec.weekdays:
                        return True
    return False


def _join(values: frozenset[int], low: int, high: int) -> str:
    if values == frozenset(range(low, high + 1)):
        return "*"
    return ",".join(str(v) for v in sorted(values))


def _weekdays(values: frozenset[int]) -> str:
    if len(values) == 7:
        return "*"
    return ",".join(_DAYS[v] for v in sorted(values))  # names: APScheduler numbers differ


def cron_trigger(
    expression: str,
    timezone: object = None,
    jitter: int | None = None,
) -> BaseTrigger:
    """An APScheduler 3 trigger that fires exactly when crontab would.

    ``timezone`` is passed to :class:`CronTrigger` (``None``: the scheduler's).
    Raises ``ValueError`` for an invalid expression.
    """
    spec = parse_cron(expression)
    common = {
        "minute": _join(spec.minutes, 0, 59),
        "hour": _join(spec.hours, 0, 23),
        "month": _join(spec.months, 1, 12),
        "timezone": timezone,
    }
    day = _join(spec.days, 1, 31)
    weekday = _weekdays(spec.weekdays)
    if spec.day_restricted and spec.weekday_restricted:
        # crontab: either the day of month or the day of week matches
        return OrTrigger(
            [
                CronTrigger(day=day, day_of_week="*", **common),
                CronTrigger(day="*", day_of_week=weekday, **common),
            ],
            jitter=jitter,
        )
    return CronTrigger(day=day, day_of_week=weekday, jitter=jitter, **common)


# ---------------------------------------------------------------------------
# Intervals ("every 30m") and durations ("90s", "2h")
# ---------------------------------------------------------------------------

_DURATION = re.compile(r"^(\d+)\s*([smhd]?)$", re.IGNORECASE)
_INTERVAL = re.compile(r"^every\b\s*(.*)$", re.IGNORECASE)
_UNIT_SECONDS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(text: str | int | float) -> timedelta:
    """``90``/``90s``, ``30m``, ``2h`` or ``1d`` as a timedelta (a bare number is seconds).

    Raises ``ValueError`` with a one-line reason.
    """
    if isinstance(text, bool):
        raise ValueError(f"expected a duration such as 30s, 10m or 2h, got {text!r}")
    if isinstance(text, int | float):
        if text < 0:
            raise ValueError(f"a duration cannot be negative, got {text!r}")
        return timedelta(seconds=text)
    match = _DURATION.match(str(text).strip())
    if not match:
        raise ValueError(f"expected a duration such as 30s, 10m or 2h, got {text!r}")
    return timedelta(seconds=int(match.group(1)) * _UNIT_SECONDS[match.group(2).lower()])


def is_interval(expression: str) -> bool:
    """Whether ``expression`` is meant as an interval schedule (starts with ``every``)."""
    return isinstance(expression, str) and _INTERVAL.match(expression.strip()) is not None


def parse_interval(expression: str) -> timedelta:
    """``every <N><s|m|h|d>`` as a timedelta. Raises ``ValueError`` with a one-line reason."""
    match = _INTERVAL.match(expression.strip()) if isinstance(expression, str) else None
    if not match:
        raise ValueError(f"expected 'every <N><s|m|h|d>' such as 'every 30m', got {expression!r}")
    amount = match.group(1).strip()
    if not _DURATION.match(amount) or not amount[-1:].isalpha():
        raise ValueError(
            f"expected a number and a unit (s, m, h or d) after 'every', such as 'every 30m',"
            f" got {amount!r}"
        )
    interval = parse_duration(amount)
    if interval <= timedelta(0):
        raise ValueError("the interval must be at least 1 second")
    return interval


def _interval_text(interval: timedelta) -> str:
    seconds = int(interval.total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds % size == 0:
            return f"every {seconds // size}{unit}"
    return f"every {seconds}s"


def normalize_schedule(expression: str) -> str:
    """Validate a cron expression or an ``every <N><unit>`` interval and normalize it.

    Intervals are written in their largest whole unit (``every 60m`` becomes
    ``every 1h``, ``every 90m`` stays). Raises ``ValueError``.
    """
    if is_interval(expression):
        return _interval_text(parse_interval(expression))
    return normalize_cron(expression)


def schedule_trigger(
    expression: str,
    timezone: object = None,
    jitter: int | None = None,
) -> BaseTrigger:
    """The APScheduler 3 trigger for a source schedule: an interval or crontab's meaning.

    Raises ``ValueError`` for an invalid schedule.
    """
    if is_interval(expression):
        interval = parse_interval(expression)
        return IntervalTrigger(seconds=int(interval.total_seconds()), timezone=timezone,
                               jitter=jitter)
    return cron_trigger(expression, timezone=timezone, jitter=jitter)
