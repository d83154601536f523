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
"""

from __future__ import annotations

from collections.abc import Coroutine
from typing import Any

from scrapy.core.downloader import Downloader as _ScrapyDownloader
from scrapy.core.downloader import Slot
from scrapy.http import Request


class Downloader(_ScrapyDownloader):
    def _wait_for_download(
        self, slot: Slot, request: Request, queue_dfd: Any
    ) -> Coroutine[Any, Any, None]:
        slot.transferring.add(request)  # reserve now: the task may start later
        return super()._wait_for_download(slot, request, queue_dfd)
