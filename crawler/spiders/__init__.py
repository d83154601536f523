"""claimwatch spiders, one per source kind."""

from __future__ import annotations

from crawler.spiders.feed import FeedSpider

SPIDERS_BY_KIND = {
    "feed": FeedSpider,
}
