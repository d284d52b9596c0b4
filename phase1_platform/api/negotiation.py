"""Which representation a request gets, and whether its copy is still current.

- ``choose_media_type(format, accept)``: ``format`` (``json``, ``csv``, ``arrow``) wins,
  else the ``Accept`` header's best offer (q-values honoured; a missing header or ``*/*``
  is JSON); an ``Accept`` that admits none of them is a 406 problem.
- ``etag(sha256)`` / ``is_current(if_none_match, etag)``: the strong ETag of a canonical
  sha256 and RFC 9110's weak comparison for ``If-None-Match`` (``*`` matches anything).
"""

from __future__ import annotations

from .problems import NotAcceptableError
from .render import ARROW_MEDIA_TYPE

JSON, CSV, ARROW = "application/json", "text/csv", ARROW_MEDIA_TYPE
FORMATS = {"json": JSON, "csv": CSV, "arrow": ARROW}
OFFERED = (JSON, CSV, ARROW)  # preference order on ties


def _accept_items(accept: str) -> list[tuple[str, float]]:
    items = []
    for part in accept.split(","):
        fields = [f.strip() for f in part.split(";")]
        media = fields[0].lower()
        if not media:
            continue
        q = 1.0
        for f in fields[1:]:
            name, _, value = f.partition("=")
            if name.strip().lower() == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        items.append((media, q if 0.0 <= q <= 1.0 else 0.0))
    return items


def _quality(offer: str, items: list[tuple[str, float]]) -> float:
    """The q of the most specific range matching ``offer`` (-1: none matches)."""
    kind = offer.split("/")[0]
    best, specificity = -1.0, -1
    for media, q in items:
        level = 2 if media == offer else 1 if media == f"{kind}/*" else 0 if media == "*/*" \
            else -1
        if level > specificity:
            best, specificity = q, level
    return best


def choose_media_type(format: str | None, accept: str | None) -> str:
    if format:
        return FORMATS[format]
    if not accept or not accept.strip():
        return JSON
    items = _accept_items(accept)
    scored = [(_quality(offer, items), -i, offer) for i, offer in enumerate(OFFERED)]
    q, _, offer = max(scored)
    if q <= 0:
        raise NotAcceptableError(
            "Accept", f"Accept {accept[:60]!r} admits none of {', '.join(OFFERED)}: ask for "
            "one of them, or pass format=json|csv|arrow")
    return offer


def etag(sha256: str) -> str:
    return f'"{sha256}"'


def is_current(if_none_match: str | None, tag: str) -> bool:
    """Whether ``If-None-Match`` names ``tag`` (weak comparison) or is ``*``."""
    if not if_none_match:
        return False
    wanted = tag.removeprefix("W/")
    for item in if_none_match.split(","):
        item = item.strip()
        if item == "*" or item.removeprefix("W/") == wanted:
            return True
    return False


__all__ = ["ARROW", "CSV", "FORMATS", "JSON", "choose_media_type", "etag", "is_current"]
