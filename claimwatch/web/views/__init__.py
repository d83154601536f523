"""The app's view groups, one blueprint per module."""

from __future__ import annotations

from flask import Flask


def register(app: Flask) -> None:
    from claimwatch.web.views import (
        accounts,
        actions,
        api,
        articles,
        claims,
        export,
        search,
        sources,
        topics,
    )

    for module in (articles, actions, claims, topics, search, export, sources, accounts, api):
        app.register_blueprint(module.bp)
