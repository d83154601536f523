"""Source schedules: intervals ("every 30m") next to cron, durations, their triggers."""

from __future__ import annotations

import pickle
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from apscheduler.triggers.interval import IntervalTrigger

from config.cron import (
    is_interval,
    normalize_schedule,
    parse_duration,
    parse_interval,
    schedule_trigger,
)
from config.loader import ConfigError, load_topic

T0 = datetime(2024, 1, 1, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("90", 90), ("90s", 90), ("30m", 1800), ("2h", 7200), ("1d", 86400), (" 5 M ", 300), (7, 7),
     (1.5, 1.5)],
)
def test_parse_duration(text: str | int | float, seconds: float) -> None:
    assert parse_duration(text) == timedelta(seconds=seconds)


@pytest.mark.parametrize("text", ["", "m", "5x", "-5s", "1.5h", "five minutes", True, -1])
def test_parse_duration_refuses(text: object) -> None:
    with pytest.raises(ValueError, match="duration|negative"):
        parse_duration(text)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("text", "normal"),
    [
        ("every 2s", "every 2s"),
        ("Every 30m", "every 30m"),
        ("every 60m", "every 1h"),
        ("every 90 m", "every 90m"),
        ("every 120s", "every 2m"),
        ("every 24h", "every 1d"),
        ("every 36h", "every 36h"),
        ("*/30  * * * *", "*/30 * * * *"),  # cron still goes through normalize_cron
        ("@hourly", "0 * * * *"),
    ],
)
def test_normalize_schedule(text: str, normal: str) -> None:
    assert normalize_schedule(text) == normal


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("every", "expected a number and a unit"),
        ("every 5", "expected a number and a unit"),
        ("every 5x", "expected a number and a unit"),
        ("every 0s", "at least 1 second"),
        ("every -3m", "expected a number and a unit"),
        ("everyday", "expected 5 fields"),  # not an interval: read as cron
    ],
)
def test_bad_schedules(text: str, fragment: str) -> None:
    with pytest.raises(ValueError, match=fragment):
        normalize_schedule(text)


def test_is_interval() -> None:
    assert is_interval("every 5m") and is_interval("  EVERY 5m") and is_interval("every")
    assert not is_interval("*/5 * * * *") and not is_interval("everyday")
    assert parse_interval("every 45s") == timedelta(seconds=45)


def test_interval_trigger_fires_every_interval_and_pickles() -> None:
    trigger = schedule_trigger("every 2s", timezone="UTC")
    assert isinstance(trigger, IntervalTrigger)
    trigger = pickle.loads(pickle.dumps(trigger))  # the job store pickles it
    first = trigger.get_next_fire_time(None, T0)
    assert first is not None
    second = trigger.get_next_fire_time(first, first + timedelta(milliseconds=1))
    assert second is not None and second - first == timedelta(seconds=2)


def test_cron_schedules_keep_crontab_weekdays() -> None:
    # crontab day 1 is Monday; APScheduler's from_crontab would read it as Tuesday
    trigger = schedule_trigger("0 9 * * 1", timezone="UTC")
    fire = trigger.get_next_fire_time(None, T0 - timedelta(days=1))  # Sunday Dec 31
    assert fire is not None and fire.strftime("%a %H:%M") == "Mon 09:00"


def _topic(tmp_path: Path, schedule: str) -> Path:
    path = tmp_path / "topic.yaml"
    path.write_text(
        "name: demo\nsources:\n"
        '  - {name: a, kind: feed, url: "https://example.org/rss.xml", '
        f'schedule: "{schedule}"}}\n',
        encoding="utf-8",
    )
    return path


def test_topic_file_accepts_and_normalizes_intervals(tmp_path: Path) -> None:
    topic = load_topic(_topic(tmp_path, "every 120m"))
    assert topic.sources[0].schedule == "every 2h"


def test_topic_file_names_a_bad_interval(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load_topic(_topic(tmp_path, "every 0m"))
    assert info.value.where == "sources[0].schedule"
    assert info.value.problem == (
        "invalid interval schedule 'every 0m': the interval must be at least 1 second"
    )


def test_topic_file_cron_errors_unchanged(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load_topic(_topic(tmp_path, "61 * * * *"))
    assert info.value.problem.startswith("invalid cron expression '61 * * * *': minute field")
