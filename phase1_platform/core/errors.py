"""The user-facing error family: the one home of "what counts as a user error".

Every error a user can cause or fix (a bad file, partition key, symbol, date, setting,
missing key, unreachable or read-only database, refusing vendor) is a ``UserError``.
Boundaries (CLI, Dagster assets and checks, the ingestion service) turn exactly these
into one line naming the thing and the fix; anything else is a bug and keeps its
traceback, so a bug is never disguised as bad input (DESIGN section 7).

The subclasses also derive from the builtin that describes them (``ValueError`` for bad
input, ``OSError`` for the store, ``RuntimeError`` for a vendor), so callers that catch
those keep working; boundaries catch ``UserError`` only.
"""

from __future__ import annotations


class UserError(Exception):
    """Something the user can fix: its message is one line naming the thing and the fix."""

    def one_line(self) -> str:
        text = " ".join(str(self).split())
        return text or type(self).__name__


class InputError(UserError, ValueError):
    """Input that cannot be used as given: a file, a column set, a value, an argument."""


class ConfigError(UserError, ValueError):
    """A setting, symbol, partition key, date, timeframe or rule set that is not valid."""


class StoreUnavailableError(UserError, OSError):
    """The store of record cannot be used: unreachable, read-only, locked, full, unknown."""


class VendorError(UserError, RuntimeError):
    """A vendor refused or failed a request (keys, limits, outages, malformed replies)."""


def one_line(exc: BaseException) -> str:
    """The message of ``exc`` on one line (whitespace collapsed)."""
    if isinstance(exc, UserError):
        return exc.one_line()
    return " ".join(str(exc).split()) or type(exc).__name__
