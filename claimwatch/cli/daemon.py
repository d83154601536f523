"""``claimwatch daemon``: scheduled crawls, manual triggers and the JSON API.

Registered on the main group by ``claimwatch/cli/__init__.py``. Thin: parses options and
calls :func:`claimwatch.daemon.run_daemon`.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import TypeVar

import click

from claimwatch.cli.common import TOKEN_ENV, db_option, settings_option, user_message

T = TypeVar("T")
EMAIL_SCHEDULE_ENV = "CLAIMWATCH_EMAIL_SCHEDULE"


def _parsed(parse: Callable[[str], T], value: str, option: str) -> T:
    """``parse(value)``, its ValueError a usage error that names ``option``."""
    try:
        return parse(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint=option) from None


def _duration(value: str, option: str) -> timedelta:
    from config.cron import parse_duration

    return _parsed(parse_duration, value, option)


@click.command("daemon")
@click.argument("topic_files", nargs=-1, required=True, metavar="TOPIC_FILE...",
                type=click.Path(exists=True, dir_okay=False, path_type=Path))
@db_option
@click.option("--listen", default="127.0.0.1:8750", show_default=True, metavar="HOST:PORT",
              help="Address of the JSON API (port 0: any free port; 'none': no API).")
@settings_option("Override a setting for every crawl, e.g. --set DOWNLOAD_DELAY=2.")
@click.option("--crawl-timeout", default="1h", show_default=True, metavar="DURATION",
              help="Stop a crawl that runs longer (a source's `timeout:` option overrides it).")
@click.option("--grace", default="30s", show_default=True, metavar="DURATION",
              help="On SIGTERM/SIGINT, how long running crawls may take to finish.")
@click.option("--misfire-grace", default="5m", show_default=True, metavar="DURATION",
              help="A scheduled crawl missed by less than this (daemon down, busy) still runs,"
                   " once.")
@click.option("--max-parallel", default=4, show_default=True, type=click.IntRange(1, 256),
              help="Crawl processes (each runs one batch of a topic's due sources at a time).")
@click.option("--kill-grace", default="10s", show_default=True, metavar="DURATION",
              help="Time between SIGTERM and SIGKILL when a crawl is stopped.")
@click.option("--token", envvar=TOKEN_ENV, metavar="TOKEN",
              help=f"Access token for the API and review page (or ${TOKEN_ENV}); required to "
                   "listen on a non-loopback address. API clients send Authorization: Bearer.")
@click.option("--email-schedule", envvar=EMAIL_SCHEDULE_ENV, metavar="CRON_OR_INTERVAL",
              help=f"Email each topic's digest on this schedule (or ${EMAIL_SCHEDULE_ENV}), "
                   "e.g. '0 7 * * *' or 'every 1d', over SMTP as set by CLAIMWATCH_SMTP_HOST, "
                   "_PORT, _STARTTLS, _USER, _PASSWORD, _FROM, _TO.")
@click.option("--email-since", default="since-last", show_default=True,
              metavar="since-last|DURATION",
              help="The window of each emailed digest: since the last digest emailed, or a "
                   "duration such as 24h.")
@click.option("--email-empty", is_flag=True,
              help="Also email a digest with nothing in it (by default it is skipped).")
def daemon(topic_files: tuple[Path, ...], db_url: str | None, listen: str,
           settings: dict[str, str], crawl_timeout: str, grace: str, misfire_grace: str,
           max_parallel: int, kill_grace: str, token: str | None, email_schedule: str | None,
           email_since: str, email_empty: bool) -> None:
    """Crawl the topic files' sources on their schedules, until SIGTERM.

    Each source's `schedule` is a cron expression ("*/30 * * * *") or an interval
    ("every 30m"); crawls run in long-lived crawl processes (a crash or a leak in
    one never reaches the daemon) and are recorded in the database's crawl history.
    The JSON API triggers crawls and reports health:

    \b
      GET  /api/health      scheduler, running crawls, per-source gap alarms
      GET  /api/runs        crawl history (?topic=&source=&status=&limit=)
      POST /api/crawl       {"topic": "...", "source": "..."}: crawl now

    Topic files are re-read when they change or on SIGHUP. SIGTERM or SIGINT
    stops scheduling, lets running crawls finish for --grace, stops the rest and
    exits 0. One daemon per database: a second one refuses to start.

    With --email-schedule it emails each topic's digest (HTML with a text part); a
    digest that cannot be sent waits in the outbox ($CLAIMWATCH_OUTBOX) and goes
    out on the next run. /api/health reports the deliveries.

    \b
    Example:
      claimwatch daemon config/topics/twitter-child-safety.yaml --listen 127.0.0.1:8750
      curl -s -X POST -H 'Content-Type: application/json' \\
           -d '{"source": "nbc-tech"}' http://127.0.0.1:8750/api/crawl
      CLAIMWATCH_SMTP_HOST=smtp.example.org CLAIMWATCH_SMTP_FROM=cw@example.org \\
      CLAIMWATCH_SMTP_TO=desk@example.org claimwatch daemon topic.yaml \\
           --email-schedule '0 7 * * *'
    """
    from claimwatch.daemon import DaemonError, DaemonOptions, parse_email_since, run_daemon
    from claimwatch.web import check_listen
    from claimwatch.web import parse_api_listen as parse_listen
    from config.cron import normalize_schedule
    from storage.db import default_db_url

    email_schedule = (email_schedule or "").strip() or None
    if email_schedule:
        email_schedule = _parsed(normalize_schedule, email_schedule, "--email-schedule")
    email_since = _parsed(parse_email_since, email_since, "--email-since")
    address = _parsed(parse_listen, listen, "--listen")
    if address is not None:
        _parsed(lambda host: check_listen(host, token), address[0], "--listen")

    # The daemon's own progress (runs started/finished, reloads) is worth logging by
    # default; crawls log warnings unless -vv.
    root = logging.getLogger()
    if root.getEffectiveLevel() > logging.INFO:
        logging.getLogger("claimwatch").setLevel(logging.INFO)
        for handler in root.handlers:
            handler.setLevel(min(handler.level, logging.INFO) if handler.level else 0)
    verbose = 0 if root.getEffectiveLevel() > logging.INFO else \
        1 if root.getEffectiveLevel() == logging.INFO else 2

    options = DaemonOptions(
        topic_files=topic_files,
        db_url=db_url or default_db_url(),
        listen=address,
        settings=settings,
        crawl_timeout=_duration(crawl_timeout, "--crawl-timeout"),
        grace=_duration(grace, "--grace"),
        misfire_grace=_duration(misfire_grace, "--misfire-grace"),
        kill_grace=_duration(kill_grace, "--kill-grace"),
        max_parallel=max_parallel,
        crawl_verbose=max(verbose - 1, 0),
        token=token,
        email_schedule=email_schedule,
        email_since=email_since,
        email_empty=email_empty,
    )
    try:
        code = run_daemon(options)
    except DaemonError as exc:
        raise click.ClickException(str(exc)) from exc
    except Exception as exc:
        message = user_message(exc)
        if message is None:
            raise
        raise click.ClickException(message) from exc
    if code:
        sys.exit(code)


COMMANDS = (daemon,)
