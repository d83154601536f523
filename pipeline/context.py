"""Per-crawler shared objects: the topic and the store, built once from settings."""

from __future__ import annotations

from typing import Any

from scrapy.exceptions import NotConfigured
from sqlalchemy.orm import Session, sessionmaker

from config.loader import ConfigError, load_topic
from config.models import Topic
from storage.db import default_db_url, make_engine, session_factory
from storage.repository import Store


def topic_for(crawler: Any) -> Topic:
    """The crawl's topic, loaded once per crawler from ``CLAIMWATCH_TOPIC_FILE``."""
    topic = getattr(crawler, "_claimwatch_topic", None)
    if topic is None:
        path = crawler.settings.get("CLAIMWATCH_TOPIC_FILE")
        if not path:
            raise NotConfigured(
                "CLAIMWATCH_TOPIC_FILE is not set: run `claimwatch crawl TOPIC_FILE`, or pass "
                "-s CLAIMWATCH_TOPIC_FILE=path/to/topic.yaml to scrapy"
            )
        try:
            topic = load_topic(path)
        except ConfigError as exc:
            raise NotConfigured(str(exc)) from exc
        crawler._claimwatch_topic = topic
    return topic


def store_for(crawler: Any) -> Store:
    """One Store (engine + session factory) per crawler, from ``CLAIMWATCH_DB_URL``."""
    store = getattr(crawler, "_claimwatch_store", None)
    if store is None:
        factory = crawler.settings.get("CLAIMWATCH_SESSION_FACTORY")
        if factory is None:
            url = crawler.settings.get("CLAIMWATCH_DB_URL") or default_db_url()
            factory = session_factory(make_engine(url))
        store = Store(factory)
        crawler._claimwatch_store = store
    return store


def sessions_for(crawler: Any) -> sessionmaker[Session]:
    return store_for(crawler).sessions


def source_url(url: str, settings: Any) -> str:
    site = settings.get("CLAIMWATCH_SITE_URL")
    if "${SITE}" in url:
        if not site:
            raise NotConfigured(
                f"source URL {url!r} uses ${{SITE}} but no local site is served "
                "(set serve_dir in the topic file, or CLAIMWATCH_SITE_URL)"
            )
        url = url.replace("${SITE}", site.rstrip("/"))
    return url
