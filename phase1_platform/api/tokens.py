"""Opaque, signed page tokens: where the next page of a query starts.

A token is ``base64url(payload) "." base64url(mac)``: the payload (compact JSON) holds the
token's kind (``bars``, ``quarantine``), a digest of the query it was issued for and the
keyset position (the last row of the page); the mac is HMAC-SHA256 with the server's key
(``PHASE1_API_TOKEN_KEY``, else a random key per process, so a restart voids old tokens).
``read`` accepts only a token this server issued for this very query: anything else
(malformed, tampered, forged, another query's, another kind's) is an
``InvalidPageTokenError`` naming ``page_token`` (a 400 problem).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import secrets

from .problems import InvalidPageTokenError

MAX_TOKEN_CHARS = 1024
_VERSION = 1
_MAC_BYTES = 16


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class PageTokens:
    """Issues and checks page tokens with one secret key."""

    def __init__(self, key: bytes | None = None):
        self._key = key or secrets.token_bytes(32)

    def _mac(self, payload: bytes) -> bytes:
        return hmac.new(self._key, payload, hashlib.sha256).digest()[:_MAC_BYTES]

    def issue(self, kind: str, query: str, position: list) -> str:
        """A token for the page after ``position`` (JSON-able values) of ``query`` (a
        digest of the selection)."""
        payload = json.dumps([_VERSION, kind, query, position], separators=(",", ":"),
                             ensure_ascii=True).encode("ascii")
        return f"{_b64(payload)}.{_b64(self._mac(payload))}"

    def read(self, token: str, kind: str, query: str) -> list:
        """The position ``token`` carries, when this server issued it for ``kind`` and
        ``query``; else ``InvalidPageTokenError``."""

        def refuse(why: str) -> InvalidPageTokenError:
            return InvalidPageTokenError(
                "page_token", f"page_token {why}: pass the next_page_token of the previous "
                "page of this same query unchanged, or leave page_token out to start over")

        text = str(token).strip()
        if not text or len(text) > MAX_TOKEN_CHARS or text.count(".") != 1:
            raise refuse("is not a token this server issued")
        head, _, mac = text.partition(".")
        try:
            payload, given = _unb64(head), _unb64(mac)
        except (binascii.Error, ValueError):
            raise refuse("is not a token this server issued") from None
        if not hmac.compare_digest(given, self._mac(payload)):
            raise refuse("was not issued by this server (tampered, forged, or issued before "
                         "a restart)")
        try:
            version, got_kind, got_query, position = json.loads(payload)
        except (ValueError, TypeError):
            raise refuse("is not a token this server issued") from None
        if version != _VERSION or got_kind != kind or not isinstance(position, list):
            raise refuse(f"is not a {kind} page token")
        if got_query != query:
            raise refuse("was issued for another query (symbols, timeframe, start, end, "
                         "date or symbol differ)")
        return position


__all__ = ["MAX_TOKEN_CHARS", "PageTokens"]
