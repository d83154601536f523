"""Gap alarms: failing, stalled and silent sources, judged from their history."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from claimwatch.digest import build_digest
from claimwatch.health import AlarmPolicy, RunPoint, source_alarm, source_alarms
from storage.db import open_db
from storage.models import CrawlRun, SourceState

NOW = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
POLICY = AlarmPolicy(max_failures=3, gap_factor=3.0, min_history=4)


def every(minutes: int, count: int, *, end: datetime = NOW, new: int = 1,
          status: str = "ok", trigger: str = "schedule") -> list[RunPoint]:
    """``count`` runs ``minutes`` apart, the last at ``end``."""
    return [RunPoint(started=end - timedelta(minutes=minutes * i), status=status,
                     trigger=trigger, new=new) for i in range(count)][::-1]


def kinds(**kwargs: object) -> list[str]:
    params: dict[str, object] = {"consecutive_failures": 0, "last_error": None, "now": NOW,
                                 "policy": POLICY}
    params.update(kwargs)
    return [alarm.kind for alarm in source_alarms(**params)]  # type: ignore[arg-type]


def test_a_healthy_source_has_no_alarm() -> None:
    assert kinds(runs=every(30, 10)) == []
    assert source_alarm(consecutive_failures=0, last_error=None, runs=every(30, 10), now=NOW,
                        policy=POLICY) is None


def test_failing_after_n_failures_in_a_row() -> None:
    runs = every(30, 6) + every(30, 3, status="failed", end=NOW + timedelta(minutes=90))
    assert kinds(runs=runs, consecutive_failures=2) == []
    alarm = source_alarm(consecutive_failures=3, last_error="HTTP 503", runs=runs,
                         now=NOW + timedelta(minutes=91), policy=POLICY)
    assert alarm is not None and alarm.kind == "failing"
    assert alarm.message == "failed 3 times in a row (last error: HTTP 503)"
    assert alarm.since == NOW + timedelta(minutes=30)  # the first of the three failures
    assert alarm.as_dict()["since"] == "2024-05-01T12:30:00+00:00"


def test_stalled_when_the_schedule_stops_firing() -> None:
    runs = every(30, 8)
    assert kinds(runs=runs, now=NOW + timedelta(minutes=89)) == []
    alarm = source_alarm(consecutive_failures=0, last_error=None, runs=runs,
                         now=NOW + timedelta(minutes=91), policy=POLICY)
    assert alarm is not None and alarm.kind == "stalled"
    assert alarm.message == (
        "no scheduled crawl for 1.5h (usually every 30m): is the daemon running?")
    # manual runs do not count as the schedule firing; an unscheduled source never stalls
    manual = runs + every(5, 3, trigger="manual", end=NOW + timedelta(minutes=90))
    assert kinds(runs=manual, now=NOW + timedelta(minutes=91)) == ["stalled"]
    assert kinds(runs=runs, now=NOW + timedelta(days=3), scheduled=False) == []
    # the schedule's own interval, when known, wins over the history's
    assert kinds(runs=runs, now=NOW + timedelta(minutes=91), every=timedelta(hours=1)) == []


def test_silent_when_nothing_new_for_longer_than_its_history_suggests() -> None:
    productive = every(60, 6, end=NOW)  # new articles every hour until NOW
    later = [RunPoint(NOW + timedelta(hours=h), "ok", "schedule", 0) for h in range(1, 5)]
    assert kinds(runs=productive + later, now=NOW + timedelta(hours=3)) == []
    later += [RunPoint(NOW + timedelta(hours=h), "ok", "schedule", 0) for h in range(5, 8)]
    alarm = source_alarm(consecutive_failures=0, last_error=None, runs=productive + later,
                         now=NOW + timedelta(hours=7, minutes=1), policy=POLICY)
    assert alarm is not None and alarm.kind == "silent"
    assert "nothing new for 7h" in alarm.message and "was 1h" in alarm.message


def test_a_longer_quiet_spell_in_history_raises_the_bar() -> None:
    # hourly during the day, one 8-hour night gap: 9 quiet hours is not alarming
    day1 = every(60, 5, end=NOW - timedelta(hours=12))
    day2 = every(60, 5, end=NOW)
    quiet = [RunPoint(NOW + timedelta(hours=h), "ok", "schedule", 0) for h in range(1, 10)]
    assert kinds(runs=day1 + day2 + quiet, now=NOW + timedelta(hours=9)) == []


def test_no_gap_alarm_without_enough_history() -> None:
    assert kinds(runs=every(30, 3), now=NOW + timedelta(days=2)) == []


def test_policy_from_settings() -> None:
    assert AlarmPolicy.from_settings(None) == AlarmPolicy(3, 3.0, 4)
    assert AlarmPolicy.from_settings({"CLAIMWATCH_ALARM_FAILURES": "2"}).max_failures == 2


def test_digest_sources_carry_their_alarm(sqlite_url: str) -> None:
    engine, sessions = open_db(sqlite_url)
    with sessions.begin() as session:
        session.add_all([
            SourceState(topic="t", source="broken", consecutive_failures=4,
                        last_error="feed not found", items_seen=0),
            SourceState(topic="t", source="fine", consecutive_failures=0, items_seen=3),
            CrawlRun(topic="t", source="fine", trigger="schedule", status="ok",
                     started=NOW, finished=NOW, counts={"new": 1}),
        ])
    with sessions() as session:
        data = build_digest(session, topic="t", now=NOW + timedelta(minutes=1))
    engine.dispose()
    alarms = {s["name"]: s["alarm"] for s in data["sources"]}
    assert alarms["fine"] is None
    assert alarms["broken"]["kind"] == "failing"
    assert alarms["broken"]["message"] == "failed 4 times in a row (last error: feed not found)"
