"""A topic's page: its articles per day by flag, as a chart and a table."""

from __future__ import annotations

from flask import Blueprint, render_template

from claimwatch.web import charts
from claimwatch.web.errors import HTTPError
from claimwatch.web.helpers import int_arg
from claimwatch.web.state import desk

bp = Blueprint("topics", __name__)


@bp.get("/topic/<topic>")
def page_topic(topic: str) -> str:
    days = int_arg("days", 30, 1, 366)
    state = desk()
    with state.read() as session:
        if topic not in state.topic_names(session):
            raise HTTPError(404, f"no topic {topic!r}")
        counts = charts.daily_counts(session, topic, days=days)
    return render_template(
        "topic.html", topic=topic, days=days, counts=counts,
        total=sum(c.total for c in counts),
        geometry=charts.daily_geometry(counts, topic) if counts else None)
