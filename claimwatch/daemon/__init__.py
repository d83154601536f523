"""``claimwatch daemon``: scheduled crawls in long-lived crawl processes, health, digest emails.

The names below are the package's interface (the CLI, the tests, and the textual job
references ``claimwatch.daemon:scheduled_crawl`` / ``:scheduled_revisit`` /
``:scheduled_digest`` kept in the job store); see ``core.py`` for how the parts fit.
"""

from claimwatch.daemon.core import Daemon, run_daemon
from claimwatch.daemon.digests import (
    SINCE_LAST,
    DigestOutcome,
    digest_window,
    email_digests,
    parse_email_since,
    scheduled_digest,
)
from claimwatch.daemon.options import DaemonError, DaemonOptions
from claimwatch.daemon.scheduling import scheduled_crawl, scheduled_revisit, source_timeout
from claimwatch.daemon.supervision import ActiveRun, describe_exit

__all__ = [
    "SINCE_LAST", "ActiveRun", "Daemon", "DaemonError", "DaemonOptions", "DigestOutcome",
    "describe_exit", "digest_window", "email_digests", "parse_email_since", "run_daemon",
    "scheduled_crawl", "scheduled_digest", "scheduled_revisit", "source_timeout",
]
