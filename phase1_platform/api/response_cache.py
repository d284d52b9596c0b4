"""The read API's response cache: rendered answers, valid exactly as long as the store is
unchanged.

An entry is stored under a normalized query key (endpoint, parsed selection, format, page
size and cursor) together with the store's ``Store.change_token()`` read BEFORE its data
was read; a lookup returns it only when the token read now is the same value. A write
committed since changes the token, so a cached answer is never older than the store: at
worst a request that raced a commit is cached under the older token and never served
again. No token (in-memory store, a probe that failed): nothing is cached, the request
takes the normal path (which maps a store failure to a 503).

One entry per key (a newer token replaces the older entry); least recently used entries go
first once the total size passes ``max_bytes`` (``PHASE1_API_CACHE_MIB``, default 64; 0
turns the cache off). Bodies are cached uncompressed; their gzip variant (the level the
API's gzip middleware uses) is added on first demand. Every response of a cached endpoint
says ``X-Cache: hit``, ``miss`` or ``bypass`` (not cacheable: no token or cache off).
"""

from __future__ import annotations

import gzip
import threading
from collections import OrderedDict
from collections.abc import Hashable
from dataclasses import dataclass, field

from starlette.requests import Request
from starlette.responses import Response

from .negotiation import is_current

GZIP_LEVEL = 3
GZIP_MINIMUM_SIZE = 1024
ENTRY_OVERHEAD = 512  # bytes counted per entry on top of its bodies (key, headers)
HIT, MISS, BYPASS = "hit", "miss", "bypass"


@dataclass
class CachedBody:
    """One rendered response: its body, media type and ETag (gzip added on demand)."""

    body: bytes
    media_type: str
    etag: str
    gzipped: bytes | None = field(default=None, repr=False)

    @property
    def size(self) -> int:
        return len(self.body) + len(self.gzipped or b"") + ENTRY_OVERHEAD


@dataclass
class _Entry:
    token: str
    value: object
    size: int


class ResponseCache:
    """A thread-safe LRU of values (``CachedBody`` or small objects), bounded by bytes."""

    def __init__(self, max_bytes: int):
        self.max_bytes = max(0, int(max_bytes))
        self._entries: OrderedDict[Hashable, _Entry] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()
        self.hits = self.misses = 0

    @property
    def enabled(self) -> bool:
        return self.max_bytes > 0

    @property
    def size_bytes(self) -> int:
        return self._bytes

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: Hashable, token: str | None) -> object | None:
        """The value stored for ``key`` under exactly ``token``; None (a miss) otherwise."""
        if token is None:
            return None
        with self._lock:
            entry = self._entries.get(key)
            if entry is None or entry.token != token:
                self.misses += 1
                return None
            self._entries.move_to_end(key)
            self.hits += 1
            return entry.value

    def put(self, key: Hashable, token: str | None, value: object, size: int) -> None:
        """Store ``value`` (``size`` bytes) for ``key`` under ``token`` (None: nothing)."""
        if token is None or size > self.max_bytes // 4:  # too big to be worth a quarter
            return
        with self._lock:
            old = self._entries.pop(key, None)
            if old is not None:
                self._bytes -= old.size
            self._entries[key] = _Entry(token, value, size)
            self._bytes += size
            self._evict()

    def _evict(self) -> None:
        while self._bytes > self.max_bytes and self._entries:
            _, dropped = self._entries.popitem(last=False)
            self._bytes -= dropped.size

    def gzipped(self, key: Hashable, token: str, cached: CachedBody) -> bytes:
        """The gzip variant of ``cached`` (compressed once, then kept with it)."""
        if cached.gzipped is None:
            cached.gzipped = gzip.compress(cached.body, compresslevel=GZIP_LEVEL, mtime=0)
            with self._lock:  # re-account its size, if it is still the entry of its key
                entry = self._entries.get(key)
                if entry is not None and entry.value is cached and entry.token == token:
                    self._bytes += cached.size - entry.size
                    entry.size = cached.size
                    self._evict()
        return cached.gzipped


def _wants_gzip(request: Request) -> bool:
    # the same test as Starlette's GZipMiddleware, which passes an encoded body through
    return "gzip" in request.headers.get("accept-encoding", "")


def respond(request: Request, cache: ResponseCache, key: Hashable, token: str | None,
            cached: CachedBody, state: str, headers: dict[str, str],
            if_none_match: str | None) -> Response:
    """The response for ``cached``: a 304 when ``If-None-Match`` names its ETag, else its
    body (gzip-encoded from the cache when accepted and large enough), with
    ``X-Cache: state``."""
    headers = {**headers, "X-Cache": state}
    if is_current(if_none_match, cached.etag):
        return Response(status_code=304, headers=headers)
    body = cached.body
    if state != BYPASS and len(body) >= GZIP_MINIMUM_SIZE and _wants_gzip(request):
        body = cache.gzipped(key, token, cached)
        vary = headers.get("Vary")
        headers |= {"Content-Encoding": "gzip",
                    "Vary": f"{vary}, Accept-Encoding" if vary else "Accept-Encoding"}
    return Response(body, media_type=cached.media_type, headers=headers)


__all__ = ["BYPASS", "GZIP_LEVEL", "GZIP_MINIMUM_SIZE", "HIT", "MISS", "CachedBody",
           "ResponseCache", "respond"]
