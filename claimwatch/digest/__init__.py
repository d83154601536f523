"""The digest and what goes out with it: what the desk is told, and how.

- :mod:`~claimwatch.digest.builder`: the digest (DESIGN.md's JSON contract) built from the
  store; its list queries serve the review page too.
- :mod:`~claimwatch.digest.render`: the digest as text, Markdown, HTML (email), JSON and Atom,
  one renderer per format over one shared document (same sections, same order, same counts).
- :mod:`~claimwatch.digest.mail`: the digest by email, with an outbox for what could not be sent.
- :mod:`~claimwatch.digest.notify`: alerts to Apprise channels (Slack, Matrix, webhooks...).
- :mod:`~claimwatch.digest.export`: stored articles as CSV or JSON Lines, each line a digest
  entry (the same contract as the digest's articles).

The builder's names are the package's own (``from claimwatch.digest import build_digest``):
every caller of the digest starts there.
"""

from claimwatch.digest.builder import (
    FLAGS,
    DigestError,
    article_entry,
    build_digest,
    entries,
    iter_entries,
    list_query,
    parse_since,
)

__all__ = [
    "FLAGS",
    "DigestError",
    "article_entry",
    "build_digest",
    "entries",
    "iter_entries",
    "list_query",
    "parse_since",
]
