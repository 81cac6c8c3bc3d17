"""Command-line values parsed into the config's (config/values.py): rates, ranges, batch sizes,
and every malformed one refused with a ConfigError."""

from __future__ import annotations

import pytest

from lrtrain.config.values import parse_batch_sizes, parse_lr_range, parse_lrs
from lrtrain.errors import ConfigError


def test_parse_lrs_and_range() -> None:
    assert parse_lrs("0.1,0.2") == [0.1, 0.2]
    got = parse_lr_range("1e-4:1e-1:4")
    assert got == pytest.approx([1e-4, 1e-3, 1e-2, 1e-1])
    for bad in ("a,b", "0,1", "-1"):
        with pytest.raises(ConfigError):
            parse_lrs(bad)
    for bad in ("1:0.1:5", "1e-4:1e-1", "1e-4:1e-1:1", "x:y:z"):
        with pytest.raises(ConfigError):
            parse_lr_range(bad)


def test_batch_sizes_are_parsed_and_checked() -> None:
    assert parse_batch_sizes("16,1,full,4") == [1, 4, 16, None]
    for bad in ("1", "1,1", "0,4", "1,four", "full"):
        with pytest.raises(ConfigError, match="--batch-sizes"):
            parse_batch_sizes(bad)
