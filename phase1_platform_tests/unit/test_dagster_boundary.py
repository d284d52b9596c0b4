"""The Dagster boundary (defs/boundary.py): only UserError becomes a one-line Failure."""

from __future__ import annotations

from types import SimpleNamespace

import dagster as dg
import pytest

from phase1_platform.core.errors import ConfigError, InputError
from phase1_platform.core.partition import Partition
from phase1_platform.defs.boundary import partitions_of, user_errors


def test_a_user_error_becomes_one_line_failure():
    @user_errors
    def body():
        raise InputError("bad file x.csv:\n  fix the header")

    with pytest.raises(dg.Failure) as info:
        body()
    assert info.value.description == "bad file x.csv: fix the header"
    assert info.value.__cause__ is None and info.value.__suppress_context__


def test_a_user_error_inside_a_generator_body_becomes_one_line_failure():
    @user_errors
    def checks():
        yield 1
        raise ConfigError("unknown rule set 'x': choose from default")

    gen = checks()
    assert next(gen) == 1
    with pytest.raises(dg.Failure, match="unknown rule set 'x'"):
        next(gen)


@pytest.mark.parametrize("bug", [KeyError("ts"), ValueError("nan"), OSError("disk")])
def test_a_bug_is_not_disguised(bug):
    @user_errors
    def body():
        raise bug

    with pytest.raises(type(bug)) as info:
        body()
    assert info.value is bug


def _context(*keys: str):
    """What partitions_of reads of a Dagster context: one key (partition_key) or a range
    (partition_keys)."""
    return SimpleNamespace(has_partition_key=len(keys) == 1,
                           has_partition_key_range=len(keys) > 1, partition_keys=list(keys),
                           partition_key=keys[0] if len(keys) == 1 else None)


def test_partitions_of_parses_every_key():
    assert partitions_of(_context("2013-10-07|SPY", "2013-10-08|SPY")) == [
        Partition("2013-10-07", "SPY"), Partition("2013-10-08", "SPY")]
    with pytest.raises(ConfigError, match="invalid symbol '../../x'"):
        partitions_of(_context("2013-10-07|../../x"))
    with pytest.raises(ConfigError, match="not a XNYS trading session"):
        partitions_of(_context("2013-10-05|SPY"))
    with pytest.raises(ConfigError, match="no partition"):
        partitions_of(_context())
