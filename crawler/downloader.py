"""Scrapy's downloader with per-domain concurrency that holds under the asyncio reactor.

Scrapy 2.19 ``Downloader._process_queue`` starts each download with
``_schedule_coro(self._wait_for_download(...))``, which under the asyncio reactor
only *schedules* a task; the request enters ``slot.transferring`` when the task
runs. Until then ``slot.free_transfer_slots()`` does not drop, so every request
already queued for a domain is started at once and ``CONCURRENT_REQUESTS_PER_DOMAIN``
is not enforced (measured: 10 of 12 requests in flight at a limit of 2). Under
Twisted's default reactor the coroutine starts synchronously and the limit holds.

The fix reserves the transfer slot when the download is handed out, before the task
runs; ``Downloader._download`` adds the same request again (a set: no effect) and
frees it when the download ends, as before. ``tests/test_politeness.py`` measures
the concurrency a real crawl reaches, so a Scrapy change here fails loudly.

:class:`HTTP11DownloadHandler` closes its connection pool without racing its own
timeout: Scrapy's ``close()`` fires the pool's deferred after one second if it has not
fired, but when the pool finishes at about that moment (keep-alive connections close
in about a second) under load, both fire, and Twisted logs a CRITICAL
``AlreadyCalledError`` for each crawler. A one-crawl process never showed it; the
daemon's long-lived crawl processes close a crawler per crawl, dozens at once.
"""

from __future__ import annotations

from collections.abc import Coroutine
from typing import Any

from scrapy.core.downloader import Downloader as _ScrapyDownloader
from scrapy.core.downloader import Slot
from scrapy.core.downloader.handlers.http11 import (
    HTTP11DownloadHandler as _ScrapyHTTP11DownloadHandler,
)
from scrapy.http import Request
from scrapy.utils.defer import maybe_deferred_to_future


class Downloader(_ScrapyDownloader):
    def _wait_for_download(
        self, slot: Slot, request: Request, queue_dfd: Any
    ) -> Coroutine[Any, Any, None]:
        slot.transferring.add(request)  # reserve now: the task may start later
        return super()._wait_for_download(slot, request, queue_dfd)


class HTTP11DownloadHandler(_ScrapyHTTP11DownloadHandler):
    async def close(self) -> None:
        from twisted.internet import reactor

        closed = self._pool.closeCachedConnections()

        def give_up() -> None:  # the pool can hang on a server that never closes
            if not closed.called:
                closed.callback(None)

        delayed: Any = reactor.callLater(  # type: ignore[attr-defined]
            self._disconnect_timeout, give_up)
        try:
            await maybe_deferred_to_future(closed)
        finally:
            if delayed.active():
                delayed.cancel()
