"""Serving the app: waitress (a production WSGI server, pure Python, threaded), bound
to one address, in the foreground (``claimwatch serve``) or a background thread (the
daemon, tests). Also the ``--listen`` parsing and the rule that a non-loopback address
needs an access token."""

from __future__ import annotations

import ipaddress
import logging
import re
import threading
from collections.abc import Callable, Iterable
from typing import Any

from waitress.server import create_server

from claimwatch.web.errors import WebConfigError

logger = logging.getLogger(__name__)

__all__ = ["ApiServer", "Server", "check_binding", "check_listen", "is_loopback",
           "make_server", "parse_api_listen", "parse_listen", "redact"]

MIN_TOKEN_LENGTH = 16
# Seconds a connection may sit idle before the server closes it: a half-open or stalled
# client must not hold a channel for ever.
IDLE_TIMEOUT = 15
_SECRET_IN_QUERY = re.compile(r"([?&](?:token|access_token)=)[^&\s\"]*", re.IGNORECASE)

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


def redact(text: str) -> str:
    """A request line fit for the log: ``?token=SECRET`` becomes ``?token=***``."""
    return _SECRET_IN_QUERY.sub(r"\1***", text)


def is_loopback(host: str) -> bool:
    name = host.strip().strip("[]").lower()
    if name in ("localhost", "localhost.localdomain", "ip6-localhost") or name.endswith(
        ".localhost"
    ):
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def parse_listen(value: str) -> tuple[str, int]:
    """``127.0.0.1:8750``, ``[::1]:8750``, ``0.0.0.0:8750`` or a bare port (loopback)."""
    text = value.strip()
    if text.isdigit():
        host, port_text = "127.0.0.1", text
    elif text.startswith("["):
        host, sep, port_text = text[1:].partition("]:")
        if not sep:
            raise WebConfigError(f"--listen {value!r}: write an IPv6 address as [::1]:8750")
    else:
        host, sep, port_text = text.rpartition(":")
        if not sep or not host:
            raise WebConfigError(f"--listen {value!r} is not HOST:PORT, e.g. 127.0.0.1:8750")
        if ":" in host:
            raise WebConfigError(f"--listen {value!r}: write an IPv6 address as [::1]:8750")
    if not port_text.isdigit() or not 0 <= int(port_text) < 65536:
        raise WebConfigError(f"--listen {value!r}: {port_text!r} is not a port number")
    return host, int(port_text)


def parse_api_listen(value: str) -> tuple[str, int] | None:
    """The daemon's ``--listen``: as :func:`parse_listen`, or ``none`` for no web app."""
    if value.strip().lower() in ("", "none", "off", "no"):
        return None
    return parse_listen(value)


def check_binding(host: str, token: str | None) -> None:
    """Refuse to serve on a non-loopback address without a long enough access token."""
    if token is not None and len(token) < MIN_TOKEN_LENGTH:
        raise WebConfigError(
            f"the access token is {len(token)} characters long; use at least "
            f"{MIN_TOKEN_LENGTH}, e.g. python -c 'import secrets; print(secrets.token_urlsafe())'"
        )
    if not is_loopback(host) and not token:
        raise WebConfigError(
            f"refusing to serve on {host}, which is not a loopback address, without an "
            "access token: pass --token (or set CLAIMWATCH_WEB_TOKEN), or listen on 127.0.0.1"
        )


check_listen = check_binding  # the daemon's name for the same rule


class Server:
    """waitress on ``host:port`` (port 0: any free port, see :attr:`server_port`).

    ``serve_forever()`` blocks; ``shutdown()`` from another thread ends it and
    ``server_close()`` frees the socket."""

    def __init__(self, host: str, port: int, app: WSGIApp, threads: int = 8) -> None:
        self._server = create_server(app, host=host.strip("[]"), port=port, threads=threads,
                                     channel_timeout=IDLE_TIMEOUT,
                                     cleanup_interval=max(1, IDLE_TIMEOUT // 3),
                                     ident="claimwatch", clear_untrusted_proxy_headers=True)
        self.host = host.strip("[]")
        self.server_port = int(self._server.effective_port)
        self._closed = False

    def serve_forever(self, poll_interval: float = 0.5) -> None:
        try:
            self._server.run()
        except (OSError, ValueError):  # the socket map was closed by shutdown()
            if not self._closed:
                raise

    def shutdown(self) -> None:
        self._closed = True
        self._server.close()

    def server_close(self) -> None:
        if not self._closed:
            self.shutdown()


def make_server(host: str, port: int, app: WSGIApp) -> Server:
    """A threaded server bound to ``host:port``; see :class:`Server`."""
    try:
        return Server(host, port, app)
    except OSError as exc:
        raise OSError(exc.errno, f"cannot listen on {host}:{port}: {exc.strerror or exc}") \
            from exc


class ApiServer:
    """The daemon's server: the app on ``host:port`` in a background thread."""

    def __init__(self, app: WSGIApp, host: str, port: int) -> None:
        self._server = make_server(host, port, app)
        self.host = host.strip("[]")
        self.port = self._server.server_port
        self._thread = threading.Thread(target=self._server.serve_forever,
                                        name="claimwatch-web", daemon=True)

    @property
    def address(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"

    def start(self) -> ApiServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._thread.join(timeout=5)
