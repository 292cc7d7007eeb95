"""A fixed-window counter in the cache: enough to slow down guessing of payer codes and phones.

With the default local-memory cache the limit is per process; set REDIS_URL in production so
every worker shares one count.
"""
from __future__ import annotations

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
    return request.META.get("REMOTE_ADDR", "unknown")
