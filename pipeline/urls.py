"""URL identity: canonical form of an article URL, and what a declared canonical says.

Pure functions, no Scrapy. The canonical URL is the key articles are upserted on, so
two fetches of the same article through a feed link (``?utm_source=rss``), a share link
(``?fbclid=...``) and the page itself must map to one string, while two different
articles must never do.

- :func:`canonical_url` normalises a fetched URL (scheme/host case, default ports,
  fragment, tracking parameters, query order, percent-encoding, ``//`` and dot segments)
  and, when the page declares a ``rel=canonical`` / ``og:url`` that is trustworthy
  (same registrable domain, or the fetched URL is an AMP/mobile variant or an AMP
  cache copy of it), uses the declared one instead.
- :func:`cross_site_canonical` returns a declared canonical that points to *another*
  site: that is evidence the page is a syndicated copy, not an identity.
- :func:`is_same_site` compares registrable domains (public-suffix aware, private
  suffixes such as ``blogspot.com`` or ``github.io`` included, AMP cache hosts decoded).

Registrable domains come from ``tldextract`` (a Scrapy dependency) using its bundled
public-suffix snapshot only: it never touches the network and writes no cache.
"""

from __future__ import annotations

import logging
import posixpath
import re
from functools import lru_cache
from typing import Any
from urllib.parse import parse_qsl, quote, urljoin, urlsplit, urlunsplit

logger = logging.getLogger(__name__)

__all__ = [
    "TRACKING_PARAMS",
    "TRACKING_PREFIXES",
    "canonical_url",
    "cross_site_canonical",
    "is_amp_or_mobile_variant",
    "is_same_site",
    "registrable_domain",
]

#: Query parameters that never identify content (compared case-insensitively).
TRACKING_PARAMS: frozenset[str] = frozenset(
    {
        # ad / click ids
        "fbclid", "gclid", "gclsrc", "dclid", "gbraid", "wbraid", "msclkid", "yclid",
        "twclid", "ttclid", "li_fat_id", "igshid", "igsh", "srsltid",
        # analytics / email
        "_ga", "_gl", "_hsenc", "_hsmi", "mc_cid", "mc_eid", "mkt_tok", "vero_id",
        "oly_anon_id", "oly_enc_id", "rb_clickid", "s_cid", "wt.mc_id", "wt_mc",
        "wt_mc_id", "__twitter_impression", "guccounter", "guce_referrer",
        "guce_referrer_sig",
        # referral / share markers used by news sites
        "ref", "ref_src", "ref_url", "referrer", "cmpid", "cmp", "ocid", "ncid",
        "sr_share", "smid", "smtyp", "soc_src", "soc_trk", "ito", "xtor", "ftag",
        "taid", "spm", "share", "shared", "rss", "feature", "fsrc", "src_trk",
        "__source", "ns_mchannel", "ns_source", "ns_campaign", "ns_linkname", "ns_fee",
        "at_medium", "at_campaign", "at_custom1", "at_custom2", "at_custom3",
        "at_custom4", "at_ptr_name", "at_link_id", "at_link_origin", "at_link_type",
        "at_bbc_team", "at_format", "at_link", "cid_source", "dicbo", "hss_channel",
        "amp_js_v", "amp_gsa", "usqp", "outputtype_ignore",
    }
)
#: Parameter-name prefixes that are tracking (utm_source, pk_campaign, mtm_kwd, ...).
TRACKING_PREFIXES: tuple[str, ...] = ("utm_", "pk_", "mtm_", "piwik_", "hsa_", "at_custom")

_DEFAULT_PORTS = {"http": 80, "https": 443}
# RFC 3986 unreserved characters never need escaping; everything else outside
# these "safe" sets is percent-encoded with upper-case hex.
_PATH_SAFE = "/:@!$&'()*+,;=-._~"
_QUERY_SAFE = "/:@!$'()*,;-._~?"  # '&', '=', '+' escaped inside keys/values
_MULTI_SLASH = re.compile(r"/{2,}")
_AMP_CACHE_SUFFIX = ".cdn.ampproject.org"
_MOBILE_LABELS = ("amp", "m", "mobile")


@lru_cache(maxsize=1)
def _extractor() -> Any:
    import tldextract

    # suffix_list_urls=() -> bundled snapshot only (no network), cache_dir=None -> no disk.
    return tldextract.TLDExtract(
        suffix_list_urls=(), cache_dir=None, include_psl_private_domains=True
    )


@lru_cache(maxsize=65536)
def registrable_domain(host: str) -> str:
    """``www.bbc.co.uk`` -> ``bbc.co.uk``; ``foo.blogspot.com`` -> itself; IPs/localhost as is."""
    host = host.lower().rstrip(".")
    if not host:
        return ""
    try:
        result = _extractor()(host)
        domain = getattr(result, "top_domain_under_public_suffix", None)
        if domain is None:  # tldextract < 5.3
            domain = result.registered_domain
    except Exception:  # pragma: no cover - tldextract is a Scrapy dependency
        logger.debug("tldextract failed on %s; using last two labels", host, exc_info=True)
        domain = ".".join(host.split(".")[-2:])
    return domain or host


def _normalise_host(host: str) -> str:
    host = host.strip().lower().rstrip(".")
    if not host or host.isascii():
        return host
    try:
        return host.encode("idna").decode("ascii")
    except UnicodeError:
        return host


_ESCAPE = re.compile(r"%([0-9A-Fa-f]{2})")
_STRAY_PERCENT = re.compile(r"%(?![0-9A-F]{2})")
_UNRESERVED = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")


def _unescape_unreserved(m: re.Match[str]) -> str:
    ch = chr(int(m.group(1), 16))
    return ch if ch in _UNRESERVED else "%" + m.group(1).upper()


def _requote_path(path: str) -> str:
    """RFC 3986 6.2.2 normalisation: decode escaped unreserved characters, upper-case
    the hex of the other escapes (``%2f`` stays an escaped slash), escape what must be
    (spaces, non-ASCII as UTF-8, a stray ``%``)."""
    path = _ESCAPE.sub(_unescape_unreserved, path)
    path = quote(path, safe=_PATH_SAFE + "%")
    return _STRAY_PERCENT.sub("%25", path)


def _remove_dot_segments(path: str) -> str:
    if "." not in path:
        return path
    trailing = path.endswith(("/", "/.", "/.."))
    norm = posixpath.normpath(path)
    if norm.startswith("//"):
        norm = "/" + norm.lstrip("/")
    if trailing and norm != "/":
        norm += "/"
    return norm


def _is_tracking(name: str) -> bool:
    low = name.lower()
    return low in TRACKING_PARAMS or low.startswith(TRACKING_PREFIXES)


def _normalise_query(query: str) -> str:
    if not query:
        return ""
    pairs = parse_qsl(query, keep_blank_values=True, errors="surrogateescape")
    kept = sorted((k, v) for k, v in pairs if k and not _is_tracking(k))
    out = []
    for k, v in kept:
        key = quote(k, safe=_QUERY_SAFE, errors="surrogateescape")
        if v:
            out.append(f"{key}={quote(v, safe=_QUERY_SAFE, errors='surrogateescape')}")
        else:
            out.append(key)
    return "&".join(out)


def _amp_cache_origin(host: str, path: str) -> tuple[str, str] | None:
    """Origin (host, path) of an AMP cache URL, or None.

    ``www-bbc-com.cdn.ampproject.org/c/s/www.bbc.com/news/x`` and
    ``www.google.com/amp/s/www.bbc.com/news/x`` -> ``("www.bbc.com", "/news/x")``.
    """
    if host.endswith(_AMP_CACHE_SUFFIX):
        m = re.match(r"^/(?:[a-z]/)+(?:s/)?([^/]+)(/.*)?$", path)
        if m:
            return m.group(1).lower(), m.group(2) or "/"
        encoded = host[: -len(_AMP_CACHE_SUFFIX)]
        decoded = encoded.replace("--", "\0").replace("-", ".").replace("\0", "-")
        return decoded, path or "/"
    if registrable_domain(host).startswith("google.") and path.startswith("/amp/"):
        rest = path[len("/amp/"):]
        if rest.startswith("s/"):
            rest = rest[2:]
        origin_host, _, origin_path = rest.partition("/")
        if "." in origin_host:
            return origin_host.lower(), "/" + origin_path
    return None


def _origin_host(url: str) -> str:
    try:
        parts = urlsplit(url.strip())
        host = _normalise_host(parts.hostname or "")
    except ValueError:
        return ""
    origin = _amp_cache_origin(host, parts.path)
    return origin[0] if origin else host


def is_same_site(a: str, b: str) -> bool:
    """True when two URLs are on the same registrable domain (AMP cache URLs decoded).

    >>> is_same_site("https://www.bbc.co.uk/news/1", "http://m.bbc.co.uk/x")
    True
    >>> is_same_site("https://www.bbc.co.uk/news/1", "https://www.bbc.com/news/1")
    False
    """
    ha, hb = _origin_host(a), _origin_host(b)
    if not ha or not hb:
        return False
    return registrable_domain(ha) == registrable_domain(hb)


def is_amp_or_mobile_variant(url: str) -> bool:
    """``amp.``/``m.``/``mobile.`` host, ``/amp`` path segment, ``?amp=1``,
    ``outputType=amp``, ``.amp`` / ``.amp.html`` suffix, or an AMP cache URL."""
    try:
        parts = urlsplit(url.strip())
        host = _normalise_host(parts.hostname or "")
    except ValueError:
        return False
    if _amp_cache_origin(host, parts.path) is not None:
        return True
    labels = host.split(".")
    if len(labels) > 2 and labels[0] in _MOBILE_LABELS:
        return True
    path = parts.path.lower()
    segments = [s for s in path.split("/") if s]
    if "amp" in segments or path.endswith((".amp", ".amp.html", "/amp.html")):
        return True
    for k, v in parse_qsl(parts.query, keep_blank_values=True):
        kl, vl = k.lower(), v.lower()
        if kl == "amp" and vl in ("", "1", "true", "yes"):
            return True
        if kl in ("outputtype", "output", "format", "view") and vl == "amp":
            return True
    return False


def _normalise(url: str) -> str:
    """Canonical spelling of one URL, without looking at any declared canonical."""
    raw = url.strip()
    if raw.startswith("//"):
        raw = "https:" + raw
    parts = urlsplit(raw)
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS:
        # mailto:, data:, relative references: nothing sensible to canonicalise.
        return urlunsplit((parts.scheme, parts.netloc, parts.path, parts.query, ""))
    host = _normalise_host(parts.hostname or "")
    try:
        port = parts.port
    except ValueError:  # non-numeric port: keep the netloc's own spelling
        port = None
    netloc = f"[{host}]" if ":" in host else host  # IPv6 literal
    if port is not None and port != _DEFAULT_PORTS[scheme]:
        netloc = f"{netloc}:{port}"
    path = _MULTI_SLASH.sub("/", parts.path) or "/"
    path = _remove_dot_segments(_requote_path(path))
    query = _normalise_query(parts.query)
    return urlunsplit((scheme, netloc, path, query, ""))


def _resolve_declared(url: str, declared: str | None) -> str | None:
    """Declared canonical resolved against the fetched URL, if it is usable at all."""
    if not declared or not declared.strip():
        return None
    try:
        resolved = urljoin(url.strip(), declared.strip())
        parts = urlsplit(resolved)
        if parts.scheme.lower() not in _DEFAULT_PORTS or not parts.hostname:
            return None
        return _normalise(resolved)
    except ValueError:  # "http://[bad", a declared value that is no URL at all
        return None


def _is_home(url: str) -> bool:
    parts = urlsplit(url)
    return parts.path in ("", "/") and not parts.query


def canonical_url(url: str, *, declared: str | None = None) -> str:
    """Canonical form of a fetched article URL.

    ``declared`` is the page's ``rel=canonical`` or ``og:url`` (may be relative). It
    replaces the fetched URL when, after resolution, it is an http(s) URL and

    - it is on the same registrable domain as the fetched URL, or the fetched URL is
      an AMP cache copy of it (``cdn.ampproject.org``, ``google.com/amp/s/...``);
    - it is not the site's home page while the fetched URL is an article (a common CMS
      bug puts the home page in every page's canonical);
    - it is not itself an AMP/mobile variant of a fetched non-AMP URL.

    Otherwise the normalised fetched URL is returned; a canonical on another site is
    reported by :func:`cross_site_canonical`, never used as the identity.

    >>> canonical_url("HTTPS://WWW.Example.com:443/a//b/?utm_source=x&b=2&a=1#top")
    'https://www.example.com/a/b/?a=1&b=2'
    """
    try:
        fetched = _normalise(url)
    except ValueError:  # unparsable (e.g. a broken IPv6 literal): keep it as it came
        logger.debug("cannot parse URL %r; keeping it as is", url)
        return url.strip().split("#", 1)[0]
    resolved = _resolve_declared(url, declared)
    if resolved is None or resolved == fetched:
        return fetched
    if _is_home(resolved) and not _is_home(fetched):
        return fetched
    if is_amp_or_mobile_variant(resolved) and not is_amp_or_mobile_variant(fetched):
        return fetched
    if is_same_site(fetched, resolved):  # AMP cache URLs count as their origin site
        return resolved
    return fetched


def cross_site_canonical(url: str, declared: str | None) -> str | None:
    """The declared canonical, normalised, when it points to another site; else None.

    A syndicated copy often declares the original publisher's URL as its canonical:
    that names the original, it does not make the two URLs one article.
    """
    resolved = _resolve_declared(url, declared)
    if resolved is None:
        return None
    if is_same_site(url, resolved):
        return None
    # Even a canonical that is another site's home page names the outlet copied from.
    return resolved
