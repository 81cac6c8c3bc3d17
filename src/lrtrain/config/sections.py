"""The building blocks of the config's schema: its sections and the value types every section
uses (numbers that refuse true/false, whole numbers written as 1e5, ``number or auto``)."""

from __future__ import annotations

import math
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field


def refuse_bool(value: Any) -> Any:
    # pydantic's lax mode reads `true` as 1; in a config that is always a mistake.
    if isinstance(value, bool):
        raise ValueError("expected a number, not true/false")
    return value


# YAML's `1e-3` (no dot) is a string to PyYAML; pydantic's lax mode turns it into a float,
# which is what every user means.
def whole_number(value: Any) -> Any:
    # YAML reads `1e5` as a string; a whole number written that way is what the user means.
    value = refuse_bool(value)
    if isinstance(value, str):
        try:
            number = float(value)
        except ValueError:
            return value
        if number.is_integer():
            return int(number)
    return value


FiniteFloat = Annotated[float, Field(allow_inf_nan=False), BeforeValidator(refuse_bool)]
Int = Annotated[int, BeforeValidator(whole_number)]


def number_or_auto(low: float, high: float | None, rule: str) -> BeforeValidator:
    """One clear error for a value that is a number in [low, high) or the word ``auto``
    (rather than one error per branch of the union)."""

    def check(value: Any) -> Any:
        if value == "auto":
            return value
        try:
            number = float(refuse_bool(value))
        except (TypeError, ValueError):
            raise ValueError(f"expected a number {rule} or 'auto'") from None
        if not math.isfinite(number) or number < low or (high is not None and number >= high):
            raise ValueError(f"expected a number {rule} or 'auto'")
        if number == low and rule.startswith(">"):
            raise ValueError(f"expected a number {rule} or 'auto'")
        return number

    return BeforeValidator(check)


class Section(BaseModel):
    # A key's docstring is its description: the one source of the key reference (docs/config.md)
    # and of the JSON Schema's descriptions — read where those are made (reference.py), not at
    # import (pydantic's use_attribute_docstrings parses every section's source: ~50 ms of each
    # command's start-up)
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


def resolved(value: float | str, key: str) -> float:
    """A key that may say ``auto``, as the number it was resolved to (api.prepare)."""
    if isinstance(value, str):
        raise ValueError(f"{key}: auto must be resolved (api.prepare) before training")
    return value
