"""claimwatch spiders, one per source kind."""

from __future__ import annotations

from crawler.spiders.feed import FeedSpider
from crawler.spiders.listing import ListingSpider
from crawler.spiders.sitemap import SitemapSpider

SPIDERS_BY_KIND = {
    "feed": FeedSpider,
    "sitemap": SitemapSpider,
    "listing": ListingSpider,
}
