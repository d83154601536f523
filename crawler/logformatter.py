"""Log dropped items by their reason only: items carry whole pages and texts."""

from __future__ import annotations

import logging
from typing import Any

from scrapy import logformatter


class ConciseLogFormatter(logformatter.LogFormatter):
    def dropped(self, item: Any, exception: BaseException, response: Any, spider: Any = None
                ) -> logformatter.LogFormatterResult:
        return {"level": logging.INFO, "msg": "Dropped: %(exception)s",
                "args": {"exception": exception}}

    def scraped(self, item: Any, response: Any, spider: Any = None
                ) -> logformatter.LogFormatterResult:
        url = item.get("url") if isinstance(item, dict) else None
        return {"level": logging.DEBUG, "msg": "Stored %(url)s", "args": {"url": url}}

    def item_error(self, item: Any, exception: BaseException, response: Any, spider: Any = None
                   ) -> logformatter.LogFormatterResult:
        url = item.get("url") if isinstance(item, dict) else None
        stats = getattr(getattr(spider, "crawler", None), "stats", None)
        if stats is not None:  # per crawler: the crawl summary's errors column reads it
            stats.inc_value("claimwatch/errors/item")
        return {"level": logging.ERROR, "msg": "Error processing %(url)s",
                "args": {"url": url}}
