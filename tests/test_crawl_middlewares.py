"""crawler/middlewares.py's MetaRefreshMiddleware: redirects as Scrapy's, without keeping
a decoded copy of every page on its response."""

from __future__ import annotations

from scrapy import Request
from scrapy.http import HtmlResponse
from scrapy.utils.test import get_crawler

from crawler.middlewares import MetaRefreshMiddleware

# a character past U+FFFF makes the decoded page 4 bytes a character
BODY = ("<html><head><title>t</title></head><body><p>"
        + "Emoji \U0001F600 and text. " * 2000 + "</p></body></html>").encode("utf-8")


def middleware() -> MetaRefreshMiddleware:
    return MetaRefreshMiddleware.from_crawler(get_crawler())


def test_the_decoded_page_is_not_kept_on_the_response() -> None:
    request = Request("http://news.example/a.html")
    response = HtmlResponse(request.url, body=BODY, request=request)  # no declared charset
    assert middleware().process_response(request, response) is response
    assert response._cached_ubody is None
    assert response.encoding == "utf-8"  # what the encoding inference found is kept
    assert response.text == BODY.decode("utf-8")  # decoded again, to the same text


def test_a_meta_refresh_still_redirects() -> None:
    request = Request("http://news.example/old.html")
    body = b'<html><head><meta http-equiv="refresh" content="0; url=/new.html"></head></html>'
    response = HtmlResponse(request.url, body=body, request=request, encoding="utf-8")
    redirected = middleware().process_response(request, response)
    assert isinstance(redirected, Request)
    assert redirected.url == "http://news.example/new.html"


def test_a_text_decoded_before_is_left_alone() -> None:
    request = Request("http://news.example/a.html")
    response = HtmlResponse(request.url, body=BODY, request=request, encoding="utf-8")
    text = response.text
    middleware().process_response(request, response)
    assert response._cached_ubody is text
