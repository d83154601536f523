"""A generated news site of many distinct on-topic articles, served with an access log.

Used by the PostgreSQL and distributed tests: ``make_site(dir, n)`` writes ``n``
article pages (each on topic, each with its own text, so none is a duplicate of
another), an RSS feed listing them, a claims table and a topic file;
``serve_logged(dir)`` serves the directory on 127.0.0.1 and counts every request
per path.
"""

from __future__ import annotations

import functools
import random
import threading
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from html import escape
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

T0 = datetime(2022, 12, 1, 8, tzinfo=UTC)

_ONSETS = ["b", "c", "d", "f", "g", "h", "k", "l", "m", "n", "p", "r", "s", "t", "v", "w",
           "br", "cl", "dr", "gr", "pl", "st", "tr", "sh", "ch"]
_VOWELS = ["a", "e", "i", "o", "u", "ai", "ea", "ou"]
_CODAS = ["", "n", "r", "s", "t", "l", "nd", "st", "m"]
_TOPIC_SENTENCES = [
    "Twitter said its child safety team was reviewing the reports.",
    "Advocates asked Twitter how it handles child exploitation material now.",
    "The child safety researchers said Twitter had not answered their questions.",
]


def _vocabulary(rng: random.Random, size: int = 4000) -> list[str]:
    words: set[str] = set()
    while len(words) < size:
        syllables = rng.randint(2, 3)
        words.add("".join(rng.choice(_ONSETS) + rng.choice(_VOWELS) + rng.choice(_CODAS)
                          for _ in range(syllables)))
    return sorted(words)


def _sentence(rng: random.Random, vocab: list[str]) -> str:
    words = [rng.choice(vocab) for _ in range(rng.randint(12, 20))]
    return words[0].capitalize() + " " + " ".join(words[1:]) + "."


def article_path(i: int) -> str:
    return f"/news/{i:04d}.html"


def _article_html(i: int, rng: random.Random, vocab: list[str]) -> str:
    title = f"Report {i}: " + " ".join(rng.choice(vocab) for _ in range(5))
    paragraphs = []
    for p in range(5):
        sentences = [_sentence(rng, vocab) for _ in range(4)]
        if p == 1:
            sentences.insert(1, _TOPIC_SENTENCES[i % len(_TOPIC_SENTENCES)])
        paragraphs.append(" ".join(sentences))
    published = (T0 + timedelta(minutes=i)).isoformat()
    body = "\n".join(f"<p>{escape(p)}</p>" for p in paragraphs)
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<title>{escape(title)} | Generated Gazette</title>
<meta property="og:title" content="{escape(title)}">
<meta property="og:site_name" content="Generated Gazette">
<meta property="article:published_time" content="{published}">
<meta name="author" content="Staff {i % 7}">
</head><body>
<header><nav><a href="/">Home</a> <a href="/news/">News</a></nav></header>
<main><article>
<h1>{escape(title)}</h1>
<p class="byline">By Staff {i % 7}, <time datetime="{published}">{published}</time></p>
{body}
</article></main>
<footer>Generated Gazette, a fictional outlet for tests.</footer>
</body></html>
"""


@dataclass
class Site:
    root: Path
    topic_file: Path
    paths: list[str]  # article paths, e.g. /news/0001.html


def make_site(root: Path, n: int, *, base_url: str, name: str = "generated",
              seed: int = 7) -> Site:
    """Write ``n`` articles, ``rss.xml``, ``claims.csv`` and ``topic.yaml`` under ``root``.

    ``base_url`` is where the site will be served (the feed's links are absolute).
    """
    rng = random.Random(seed)
    vocab = _vocabulary(rng)
    (root / "news").mkdir(parents=True, exist_ok=True)
    paths = []
    items = []
    for i in range(n):
        path = article_path(i)
        page_rng = random.Random(seed * 100_003 + i)
        (root / path.lstrip("/")).write_text(_article_html(i, page_rng, vocab), encoding="utf-8")
        paths.append(path)
        items.append(
            f"<item><title>Report {i}</title><link>{base_url}{path}</link>"
            f"<guid>{base_url}{path}</guid>"
            f"<pubDate>{format_datetime(T0 + timedelta(minutes=i))}</pubDate></item>"
        )
    (root / "rss.xml").write_text(
        '<?xml version="1.0" encoding="UTF-8"?>\n<rss version="2.0"><channel>'
        f"<title>Generated Gazette</title><link>{base_url}/</link>"
        "<description>Generated test feed</description>\n" + "\n".join(items)
        + "\n</channel></rss>\n",
        encoding="utf-8",
    )
    (root / "claims.csv").write_text(
        "id,text\nc1,Twitter said its child safety team was reviewing the reports.\n",
        encoding="utf-8",
    )
    topic_file = root / "topic.yaml"
    topic_file.write_text(
        f"name: {name}\n"
        'query: {any: ["Twitter"], all: [], none: [], and_any: ["child"]}\n'
        "claims: claims.csv\n"
        "sources:\n"
        f'  - {{name: gazette, kind: feed, url: "{base_url}/rss.xml"}}\n',
        encoding="utf-8",
    )
    return Site(root=root, topic_file=topic_file, paths=paths)


@dataclass
class AccessLog:
    counts: Counter[str] = field(default_factory=Counter)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, path: str) -> None:
        with self.lock:
            self.counts[path] += 1

    def snapshot(self) -> Counter[str]:
        with self.lock:
            return Counter(self.counts)


class _LoggingHandler(SimpleHTTPRequestHandler):
    access: AccessLog
    delay: float = 0.0
    feed_gate: threading.Event | None = None

    def do_GET(self) -> None:
        self.access.add(self.path.split("?", 1)[0])
        if self.feed_gate is not None and self.path.startswith("/rss.xml"):
            self.feed_gate.wait(60)
        if self.delay and self.path.startswith("/news/"):
            threading.Event().wait(self.delay)
        super().do_GET()

    def log_message(self, format: str, *args: Any) -> None:
        pass


@contextmanager
def serve_logged(root: Path, *, delay: float = 0.0, port: int = 0,
                 feed_gate: threading.Event | None = None) -> Iterator[tuple[str, AccessLog]]:
    """Serve ``root`` on 127.0.0.1; yields (base URL, access log).

    ``delay``: seconds per article page; ``feed_gate``: the feed is answered once it is set.
    """
    access = AccessLog()
    handler = functools.partial(
        type("Handler", (_LoggingHandler,),
             {"access": access, "delay": delay, "feed_gate": feed_gate}),
        directory=str(root),
    )
    server = ThreadingHTTPServer(("127.0.0.1", port), handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", access
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
