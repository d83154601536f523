"""The web app: the review pages and the JSON API in one Flask app, served by waitress.

``create_app(sessions, topics, ...)`` builds it (claimwatch/web/app.py); ``claimwatch
serve`` and the daemon serve it (claimwatch/web/server.py). Views are grouped one module
per job in claimwatch/web/views/, pages are Jinja2 templates with autoescaping in
templates/, and the CSS and the page's one script are files in static/.
"""

from __future__ import annotations

from claimwatch.web.app import create_app
from claimwatch.web.errors import CrawlRefused, HTTPError, WebConfigError
from claimwatch.web.helpers import iso, suggest_claim_id
from claimwatch.web.server import (
    ApiServer,
    check_binding,
    check_listen,
    is_loopback,
    make_server,
    parse_api_listen,
    parse_listen,
)

make_app = create_app  # the name the CLI and tests have used

__all__ = [
    "ApiServer", "CrawlRefused", "HTTPError", "WebConfigError", "check_binding",
    "check_listen", "create_app", "is_loopback", "iso", "make_app", "make_server",
    "parse_api_listen", "parse_listen", "suggest_claim_id",
]
