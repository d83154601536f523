"""URL identity: canonical_url, declared canonicals, same-site checks."""

from __future__ import annotations

import pytest

from pipeline.urls import (
    canonical_url,
    cross_site_canonical,
    is_amp_or_mobile_variant,
    is_same_site,
    registrable_domain,
)


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        # scheme/host case, default ports, fragment, empty path
        ("HTTPS://WWW.BBC.CO.UK:443/news/technology-63925419#comments",
         "https://www.bbc.co.uk/news/technology-63925419"),
        ("http://Example.com:80", "http://example.com/"),
        ("https://example.com:8443/a", "https://example.com:8443/a"),
        ("https://example.com.", "https://example.com/"),
        # tracking parameters, sorted remaining query
        ("https://www.theguardian.com/technology/2022/dec/12/twitter-trust-safety-council"
         "?CMP=share_btn_tw&utm_source=twitter&utm_medium=social",
         "https://www.theguardian.com/technology/2022/dec/12/twitter-trust-safety-council"),
        ("https://www.nbcnews.com/tech/musk-twitter-child-safety-rcna60964"
         "?fbclid=IwAR0abc&ocid=twitter&ref=homepage",
         "https://www.nbcnews.com/tech/musk-twitter-child-safety-rcna60964"),
        ("https://www.dailymail.co.uk/news/article-7843107/Son-dies.html"
         "?ns_mchannel=rss&ito=1490&ns_campaign=1490",
         "https://www.dailymail.co.uk/news/article-7843107/Son-dies.html"),
        ("https://www.bbc.com/news/world-1?at_medium=RSS&at_campaign=KARANGA",
         "https://www.bbc.com/news/world-1"),
        ("https://example.org/article.php?id=42&page=2&gclid=x&_ga=2.1&mc_cid=a&mc_eid=b",
         "https://example.org/article.php?id=42&page=2"),
        ("https://example.org/story?b=2&a=1&UTM_Campaign=x&igshid=y&msclkid=z",
         "https://example.org/story?a=1&b=2"),
        ("https://edition.cnn.com/2022/12/12/tech/twitter/index.html?cmpid=rss&sr_share=fb",
         "https://edition.cnn.com/2022/12/12/tech/twitter/index.html"),
        ("https://example.org/page?yclid=1&dclid=2&ref_src=twsrc", "https://example.org/page"),
        # query normalisation: '+' and %20 are one spelling, blank values kept
        ("https://example.org/search?q=elon+musk&x=", "https://example.org/search?q=elon%20musk&x"),
        ("https://example.org/search?q=elon%20musk&x", "https://example.org/search?q=elon%20musk&x"),
        # percent-encoding: unreserved decoded, hex upper-cased, reserved kept escaped
        ("https://example.org/%7euser/caf%c3%a9/a%2fb", "https://example.org/~user/caf%C3%A9/a%2Fb"),
        ("https://example.org/café story", "https://example.org/caf%C3%A9%20story"),
        ("https://example.org/100%real", "https://example.org/100%25real"),
        # '//' and dot segments
        ("https://example.org//news///2022/./12/../story/", "https://example.org/news/2022/story/"),
        # paths are otherwise kept as they are
        ("https://example.org/news/index.html", "https://example.org/news/index.html"),
        ("https://example.org/News/Story", "https://example.org/News/Story"),
        # IDN hosts to punycode, credentials dropped
        ("https://Bücher.example/x", "https://xn--bcher-kva.example/x"),
        ("https://user:pw@example.org/x", "https://example.org/x"),
        # protocol-relative
        ("//example.org/a", "https://example.org/a"),
        ("  https://example.org/a  ", "https://example.org/a"),
    ],
)
def test_canonical_url(url, expected):
    assert canonical_url(url) == expected
    assert canonical_url(expected) == expected  # idempotent


@pytest.mark.parametrize(
    ("url", "declared", "expected"),
    [
        # same registrable domain: the declared canonical wins (resolved if relative)
        ("https://www.example.com/story-123?utm_source=rss", "https://www.example.com/news/story-123",
         "https://www.example.com/news/story-123"),
        ("https://www.example.com/story-123", "/news/story-123",
         "https://www.example.com/news/story-123"),
        ("https://example.com/a", "//www.example.com/b?utm_medium=x", "https://www.example.com/b"),
        # AMP and mobile variants point at the real article
        ("https://amp.theguardian.com/technology/2022/dec/12/x",
         "https://www.theguardian.com/technology/2022/dec/12/x",
         "https://www.theguardian.com/technology/2022/dec/12/x"),
        ("https://m.example.com/news/x", "https://www.example.com/news/x",
         "https://www.example.com/news/x"),
        ("https://www.example.com/news/x/amp", "https://www.example.com/news/x",
         "https://www.example.com/news/x"),
        ("https://www.example.com/news/x?amp=1", "https://www.example.com/news/x",
         "https://www.example.com/news/x"),
        ("https://www.cnn.com/x?outputType=amp", "https://edition.cnn.com/x",
         "https://edition.cnn.com/x"),
        # AMP caches are on another domain but are the publisher's page
        ("https://www-bbc-co-uk.cdn.ampproject.org/c/s/www.bbc.co.uk/news/amp/technology-1",
         "https://www.bbc.co.uk/news/technology-1", "https://www.bbc.co.uk/news/technology-1"),
        ("https://www.google.com/amp/s/www.bbc.co.uk/news/amp/technology-1",
         "https://www.bbc.co.uk/news/technology-1", "https://www.bbc.co.uk/news/technology-1"),
        # another site: evidence of a copy, not an identity
        ("https://www.yahoo.com/news/musk-twitter-123.html",
         "https://www.nbcnews.com/tech/musk-twitter-child-safety-rcna60964",
         "https://www.yahoo.com/news/musk-twitter-123.html"),
        # the CMS bug: every page declares the home page
        ("https://www.example.com/news/story-1", "https://www.example.com/",
         "https://www.example.com/news/story-1"),
        # a canonical that is itself the AMP page is not trusted over the real one
        ("https://www.example.com/news/x", "https://www.example.com/news/x/amp",
         "https://www.example.com/news/x"),
        # junk declared values are ignored
        ("https://www.example.com/a", "", "https://www.example.com/a"),
        ("https://www.example.com/a", "   ", "https://www.example.com/a"),
        ("https://www.example.com/a", None, "https://www.example.com/a"),
        ("https://www.example.com/a", "javascript:void(0)", "https://www.example.com/a"),
        ("https://www.example.com/a", "mailto:news@example.com", "https://www.example.com/a"),
        # private suffixes: two blogspot blogs are two sites
        ("https://alice.blogspot.com/2022/12/post.html", "https://bob.blogspot.com/2022/12/post.html",
         "https://alice.blogspot.com/2022/12/post.html"),
    ],
)
def test_canonical_url_with_declared(url, declared, expected):
    assert canonical_url(url, declared=declared) == expected


def test_cross_site_canonical():
    yahoo = "https://www.yahoo.com/news/musk-twitter-123.html"
    nbc = "https://www.nbcnews.com/tech/musk-twitter-child-safety-rcna60964?utm_source=yahoo"
    assert cross_site_canonical(yahoo, nbc) == (
        "https://www.nbcnews.com/tech/musk-twitter-child-safety-rcna60964"
    )
    assert cross_site_canonical(yahoo, "/news/other.html") is None
    assert cross_site_canonical(yahoo, None) is None
    assert cross_site_canonical(yahoo, "https://news.yahoo.com/x") is None
    amp = "https://www-bbc-co-uk.cdn.ampproject.org/c/s/www.bbc.co.uk/news/technology-1"
    assert cross_site_canonical(amp, "https://www.bbc.co.uk/news/technology-1") is None


@pytest.mark.parametrize(
    ("a", "b", "same"),
    [
        ("https://www.bbc.co.uk/news/1", "http://m.bbc.co.uk/x", True),
        ("https://www.bbc.co.uk/news/1", "https://www.bbc.com/news/1", False),
        ("https://edition.cnn.com/x", "https://www.cnn.com/y", True),
        ("https://alice.blogspot.com/", "https://bob.blogspot.com/", False),
        ("https://example.github.io/a", "https://example.github.io/b", True),
        ("https://www.example.co.uk/", "https://example.co.uk/", True),
        ("https://www-bbc-co-uk.cdn.ampproject.org/c/s/www.bbc.co.uk/x", "https://bbc.co.uk/",
         True),
        ("https://localhost:8000/a", "http://localhost/b", True),
        ("https://127.0.0.1/a", "https://127.0.0.2/a", False),
        ("not a url", "https://example.org/", False),
    ],
)
def test_is_same_site(a, b, same):
    assert is_same_site(a, b) is same
    assert is_same_site(b, a) is same


def test_registrable_domain():
    assert registrable_domain("www.bbc.co.uk") == "bbc.co.uk"
    assert registrable_domain("WWW.Example.COM.") == "example.com"
    assert registrable_domain("foo.blogspot.com") == "foo.blogspot.com"
    assert registrable_domain("localhost") == "localhost"


@pytest.mark.parametrize(
    ("url", "amp"),
    [
        ("https://amp.theguardian.com/x", True),
        ("https://m.bbc.co.uk/news", True),
        ("https://mobile.twitter.com/x", True),
        ("https://www.example.com/news/x/amp", True),
        ("https://www.example.com/amp/news/x", True),
        ("https://www.example.com/news/x.amp.html", True),
        ("https://www.example.com/news/x?amp", True),
        ("https://www.example.com/news/x?amp=1", True),
        ("https://www.cnn.com/x?outputType=amp", True),
        ("https://www-bbc-co-uk.cdn.ampproject.org/c/s/www.bbc.co.uk/x", True),
        ("https://www.example.com/news/x", False),
        ("https://m.com/news/x", False),
        ("https://www.example.com/news/amplifier", False),
        ("https://www.example.com/news/x?amp=0", False),
    ],
)
def test_is_amp_or_mobile_variant(url, amp):
    assert is_amp_or_mobile_variant(url) is amp


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("http://[::1]:80/x", "http://[::1]/x"),
        ("http://[::1]:8080/x", "http://[::1]:8080/x"),
        ("http://[broken/x#frag", "http://[broken/x"),  # unparsable: kept, never raises
        ("", ""),
        ("mailto:news@example.org", "mailto:news@example.org"),
    ],
)
def test_canonical_url_odd_inputs(url, expected):
    assert canonical_url(url) == expected
    assert canonical_url("https://example.org/a", declared="http://[broken") == (
        "https://example.org/a"
    )
    assert cross_site_canonical("https://example.org/a", "http://[broken") is None
