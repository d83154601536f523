"""Which network addresses a crawl must never fetch from (server-side request forgery).

Pure functions, no Scrapy. A feed, sitemap or listing page is untrusted input: a link to
``http://169.254.169.254/latest/meta-data/`` or ``http://10.0.0.5/admin`` would make the
crawler fetch from the machine's own network. :func:`refusal_reason` says why an
address is refused (``None`` for a public address); :func:`host_refusal_reason` does
the same for a host name without resolving it (IP literals, ``localhost``, metadata
names), so the resolver is only asked about real names.
"""

from __future__ import annotations

import ipaddress

__all__ = ["METADATA_ADDRESSES", "METADATA_HOSTS", "host_refusal_reason", "refusal_reason"]

#: Cloud instance-metadata endpoints (AWS/GCP/Azure/OpenStack, AWS IPv6, Alibaba, Oracle).
METADATA_ADDRESSES: frozenset[ipaddress.IPv4Address | ipaddress.IPv6Address] = frozenset(
    {
        ipaddress.ip_address("169.254.169.254"),
        ipaddress.ip_address("169.254.170.2"),  # AWS ECS task metadata
        ipaddress.ip_address("fd00:ec2::254"),
        ipaddress.ip_address("100.100.100.200"),
        ipaddress.ip_address("192.0.0.192"),
    }
)
#: Host names that reach a metadata service from inside a cloud instance.
METADATA_HOSTS: frozenset[str] = frozenset(
    {"metadata", "metadata.google.internal", "metadata.goog", "instance-data",
     "instance-data.ec2.internal"}
)
_LOCAL_SUFFIXES = (".localhost", ".local", ".internal", ".localdomain", ".home.arpa")
_SHARED = ipaddress.ip_network("100.64.0.0/10")  # carrier-grade NAT (RFC 6598)


def refusal_reason(address: str) -> str | None:
    """Why ``address`` (an IPv4/IPv6 literal) must not be fetched from, or None if public.

    Reasons are short stats keys: ``metadata``, ``loopback``, ``private``,
    ``link_local``, ``unspecified``, ``multicast``, ``reserved``.

    >>> refusal_reason("169.254.169.254"), refusal_reason("::ffff:127.0.0.1")
    ('metadata', 'loopback')
    >>> refusal_reason("93.184.216.34") is None
    True
    """
    try:
        ip = ipaddress.ip_address(address.strip().strip("[]").split("%", 1)[0])
    except ValueError:
        return "invalid"
    if isinstance(ip, ipaddress.IPv6Address):
        mapped = ip.ipv4_mapped or ip.sixtofour
        if mapped is not None:
            return refusal_reason(str(mapped))
        if ip.teredo is not None:
            return refusal_reason(str(ip.teredo[1]))
    if ip in METADATA_ADDRESSES:
        return "metadata"
    if ip.is_loopback:
        return "loopback"
    if ip.is_link_local:
        return "link_local"
    if ip.is_unspecified:
        return "unspecified"
    if ip.is_multicast:
        return "multicast"
    if ip.is_private or (isinstance(ip, ipaddress.IPv4Address) and ip in _SHARED) \
            or getattr(ip, "is_site_local", False):  # fec0::/10: deprecated, still internal
        return "private"
    if ip.is_reserved or not ip.is_global:
        return "reserved"
    return None


def host_refusal_reason(host: str) -> str | None:
    """Why ``host`` is refused without resolving it: an IP literal that is not public,
    ``localhost``, a metadata name or a local-only suffix. None means "resolve and check"."""
    host = host.strip().strip("[]").rstrip(".").lower()
    if not host:
        return "invalid"
    try:
        ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        pass
    else:
        return refusal_reason(host)
    if host in METADATA_HOSTS:
        return "metadata"
    if host == "localhost" or host.endswith(".localhost"):
        return "loopback"
    if host.endswith(_LOCAL_SUFFIXES):
        return "private"
    return None
