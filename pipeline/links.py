"""Which links on a section (listing) page look like articles, and which like more listings.

Pure functions, no Scrapy. News sites give articles recognisable URLs: a date in
the path (``/2022/12/16/...``, ``/20221216/``), a long hyphenated slug
(``/tech/twitter-child-safety-team-cut``), or a long numeric id
(``/news/world-64012345``, ``/article/123456``). Navigation does not: tag, author,
category, search, login, subscribe and pagination pages, feeds and files.
"""

from __future__ import annotations

import re
from urllib.parse import parse_qsl, urlsplit

__all__ = ["in_section", "looks_like_article", "looks_like_listing", "NON_ARTICLE_SEGMENTS"]

#: Path segments that mark a page as navigation, never an article.
NON_ARTICLE_SEGMENTS: frozenset[str] = frozenset(
    {
        "tag", "tags", "topic", "topics", "category", "categories", "section", "sections",
        "author", "authors", "people", "profile", "profiles", "search", "login", "signin",
        "sign-in", "logout", "register", "signup", "sign-up", "subscribe", "subscription",
        "subscriptions", "newsletter", "newsletters", "account", "accounts", "about",
        "about-us", "contact", "contact-us", "privacy", "privacy-policy", "terms",
        "terms-of-service", "terms-of-use", "cookies", "cookie-policy", "advertise",
        "careers", "jobs", "help", "faq", "feed", "feeds", "rss", "atom", "sitemap",
        "page", "archive", "archives", "shop", "store", "cart", "events", "podcasts",
        "weather", "horoscopes", "games", "crosswords", "puzzles", "wp-login.php",
        "wp-admin", "cdn-cgi", "print", "share", "comments", "amp-iframe",
    }
)
_FILE_EXTENSIONS = re.compile(
    r"\.(?:jpe?g|png|gif|webp|svg|ico|bmp|tiff?|pdf|zip|gz|tgz|rar|7z|mp3|mp4|m4a|wav|ogg|"
    r"webm|mov|avi|css|js|json|xml|rss|atom|txt|csv|docx?|xlsx?|pptx?|epub|exe|dmg|apk)$",
    re.IGNORECASE,
)
_DATE_IN_PATH = re.compile(
    r"(?:^|/)(?:19|20)\d{2}[/-](?:0?[1-9]|1[0-2])(?:[/-](?:0?[1-9]|[12]\d|3[01]))?(?:/|-|$)"
    r"|(?:^|/|-)(?:19|20)\d{2}(?:0[1-9]|1[0-2])(?:0[1-9]|[12]\d|3[01])(?:/|-|_|$)"
)
_LONG_ID = re.compile(r"(?:^|[/_-])\d{5,}(?:\.html?|\.php|\.aspx?)?$")
_PAGINATION_QUERY = frozenset({"page", "p", "pg", "offset", "start"})
_WORD = re.compile(r"[a-z\u00c0-\uffff]{2,}", re.IGNORECASE)


def _segments(path: str) -> list[str]:
    return [s for s in path.lower().split("/") if s]


def _slug_words(segment: str) -> int:
    stem = re.sub(r"\.(?:html?|php|aspx?|shtml)$", "", segment)
    return len(_WORD.findall(stem.replace("_", "-"))) if "-" in stem or "_" in stem else 0


def looks_like_article(url: str) -> bool:
    """True when ``url``'s shape says "article" (date, long slug or long id), not navigation.

    >>> looks_like_article("https://news.example/2022/12/16/musk-twitter-team.html")
    True
    >>> looks_like_article("https://news.example/tag/twitter/")
    False
    """
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        return False
    path = parts.path or "/"
    if _FILE_EXTENSIONS.search(path) and not path.lower().endswith((".html", ".htm")):
        return False
    segments = _segments(path)
    if not segments:
        return False
    if any(s in NON_ARTICLE_SEGMENTS for s in segments):
        return False
    if any(k.lower() in _PAGINATION_QUERY for k, _ in parse_qsl(parts.query)):
        return False
    last = segments[-1]
    if _DATE_IN_PATH.search(path) and not last.isdigit():  # a dated page, not a day archive
        return True
    if _slug_words(last) >= 3 and len(last) >= 15:
        return True
    return bool(_LONG_ID.search(last))


def looks_like_listing(url: str) -> bool:
    """True for a same-site page worth following for more article links: a section
    (``/tech/``), a sub-section, or a later page of one (``/tech/page/2``, ``?page=2``).

    Articles, files, feeds and account/legal/search pages are not listings.
    """
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or looks_like_article(url):
        return False
    path = parts.path or "/"
    if _FILE_EXTENSIONS.search(path) and not path.lower().endswith((".html", ".htm")):
        return False
    segments = _segments(path)
    navigation = NON_ARTICLE_SEGMENTS - {"page", "section", "sections", "topic", "topics",
                                         "category", "categories", "archive", "archives"}
    if any(s in navigation for s in segments):
        return False
    return len(segments) <= 4


def in_section(url: str, section_url: str) -> bool:
    """True when ``url`` is below the directory of ``section_url`` and is not the site's
    home page: a listing crawl of ``/tech/`` follows ``/tech/page/2`` and ``/tech/ai/``,
    not ``/sport/`` or ``/``.

    >>> in_section("https://n.example/tech/page/2", "https://n.example/tech/")
    True
    >>> in_section("https://n.example/sport/", "https://n.example/tech/")
    False
    """
    path = urlsplit(url).path or "/"
    section = urlsplit(section_url).path or "/"
    directory = section[: section.rfind("/") + 1]
    return path not in ("/", "/index.html", "/index.htm") and path.startswith(directory)
