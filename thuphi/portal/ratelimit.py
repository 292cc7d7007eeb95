"""A fixed-window counter in the cache: enough to slow down guessing of payer codes and phones.

With the default local-memory cache the limit is per process; set REDIS_URL in production so
every worker shares one count.
"""
from __future__ import annotations

import ipaddress
import time

from django.core.cache import cache


def hit(*, bucket: str, limit: int, window: int) -> bool:
    """Count one attempt; return False when the bucket is over its limit for this window."""
    key = f"rl:{bucket}:{int(time.time()) // window}"
    cache.add(key, 0, timeout=window + 1)
    try:
        count = cache.incr(key)
    except ValueError:
        cache.set(key, 1, timeout=window + 1)
        count = 1
    return count <= limit


def client_ip(request) -> str:
    """The caller's address. Behind TRUSTED_PROXY_COUNT proxies, the entry that many places from the
    right of X-Forwarded-For (what the outermost trusted proxy saw); anything further left is
    written by the client and cannot be trusted."""
    from django.conf import settings

    remote = request.META.get("REMOTE_ADDR") or "unknown"
    hops = settings.TRUSTED_PROXY_COUNT
    if hops <= 0:
        return remote
    forwarded = [p.strip() for p in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",") if p.strip()]
    if len(forwarded) < hops or not _is_ip(forwarded[-hops]):
        return remote
    return forwarded[-hops]


def axes_client_ip(request) -> str | None:
    """The same address for django-axes, which stores it in an IP column: None when there is none."""
    ip = client_ip(request)
    return ip if _is_ip(ip) else None


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True
