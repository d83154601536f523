"""The digest as JSON: the contract of DESIGN.md, in its key order."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

_TOP_ORDER = ("topic", "generated_at", "since", "articles")
_ARTICLE_ORDER = (
    "id",
    "url",
    "canonical_url",
    "title",
    "outlet",
    "published",
    "flags",
    "duplicate_of",
    "claims",
    "conflicts",
    "candidates",
    "review",
)
_NESTED_ORDER = {
    "duplicate_of": ("id", "url", "similarity"),
    "claims": ("claim_id", "score", "sentence", "tier", "stance", "claim_text"),
    "conflicts": ("claim_id", "sentence", "claim_numbers", "article_numbers"),
    "candidates": ("sentence", "score"),
    "review": ("status", "note"),
}
_SOURCE_ORDER = ("name", "status", "last_success", "alarm")


def _ordered(obj: Mapping[str, Any], order: Sequence[str]) -> dict[str, Any]:
    """Contract keys in contract order, then any extra keys sorted by name."""
    out = {k: obj[k] for k in order if k in obj}
    for k in sorted((k for k in obj if k not in out), key=str):
        out[k] = obj[k]
    return out


def _ordered_nested(value: Any, order: Sequence[str]) -> Any:
    if isinstance(value, Mapping):
        return _ordered(value, order)
    if isinstance(value, list):
        return [_ordered(x, order) if isinstance(x, Mapping) else x for x in value]
    return value


def render_json(digest: Mapping[str, Any]) -> str:
    """The digest exactly as the contract: same keys and values, contract key order
    (unknown keys kept, sorted after the known ones), UTF-8 text, 2-space indent."""
    top = _ordered(digest, _TOP_ORDER)
    if isinstance(top.get("articles"), list):
        articles = []
        for a in top["articles"]:
            if isinstance(a, Mapping):
                a = _ordered(a, _ARTICLE_ORDER)
                for key, order in _NESTED_ORDER.items():
                    if key in a:
                        a[key] = _ordered_nested(a[key], order)
            articles.append(a)
        top["articles"] = articles
    if isinstance(top.get("sources"), list):
        top["sources"] = _ordered_nested(top["sources"], _SOURCE_ORDER)
    return json.dumps(top, ensure_ascii=False, indent=2) + "\n"
