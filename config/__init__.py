"""Topic files and claims tables: loading, validation and typed objects."""

from .cron import cron_trigger, normalize_cron, parse_cron
from .loader import ConfigError, append_claim, load_claims, load_topic
from .models import SOURCE_KINDS, Claim, Query, Source, Topic

__all__ = [
    "SOURCE_KINDS",
    "Claim",
    "ConfigError",
    "Query",
    "Source",
    "Topic",
    "append_claim",
    "cron_trigger",
    "load_claims",
    "load_topic",
    "normalize_cron",
    "parse_cron",
]
