"""Schema errors in lrtrain's words: the file, the dotted key the user wrote, what is allowed,
the value given. pydantic's own phrasing never reaches a user (tests/test_config.py holds the
list of what it would say)."""

from __future__ import annotations

import difflib
import re
import reprlib
from typing import Any

from pydantic import BaseModel


def describe(
    err: Any, source: str, root: type[BaseModel], tagged: dict[str, dict[str, set[str]]]
) -> str:
    """One error in lrtrain's words: the file, the dotted key, what is allowed, what was given
    (pydantic's own phrasing never reaches a user)."""
    loc = tuple(err["loc"])
    path, parent = _walk(loc, root)
    dotted = _dotted(path)
    kind = err["type"]
    if kind == "extra_forbidden":
        known = list(parent.model_fields) if parent is not None else []
        hint = difflib.get_close_matches(str(loc[-1]), known, n=1, cutoff=0.6)
        suggestion = f" Did you mean '{'.'.join([*path[:-1], hint[0]])}'?" if hint else ""
        return f"{source}: {dotted}: unknown key.{suggestion} Known keys here: {', '.join(known)}"
    ctx = err.get("ctx") or {}
    if kind == "value_error":
        message = str(ctx.get("error", err["msg"]))
        # a check across keys (a model validator) names its section: the input is all of it
        shown = "input" in err and not isinstance(err["input"], dict)
        return f"{source}: {dotted}: {message}" + (
            f" (got {_short(err['input'])})" if shown else ""
        )
    if kind in ("union_tag_not_found", "union_tag_invalid"):
        names = ", ".join(tagged.get(dotted, {}))
        message = f"needs a kind: one of {names}"
        example = (
            f"; e.g. {dotted}={{kind: normal, mean: 0.0, std: 1.0}}" if dotted == "data.x" else ""
        )
        return f"{source}: {dotted}: {message} (got {_short(err.get('input'))}){example}"
    message = _PHRASES.get(kind) or "is not valid here"
    message = message.format(
        choices=", ".join(_tags(str(ctx.get("expected", "")))),
        pattern_meaning=_PATTERN_MEANINGS.get(dotted, f"the pattern {ctx.get('pattern', '')}"),
        list_example=_LIST_EXAMPLES.get(dotted, "[1.0, 2.0]"),
        **{
            k: v
            for k, v in ctx.items()
            if k in ("gt", "ge", "lt", "le", "min_length", "max_length")
        },
    )
    if kind == "missing":
        return f"{source}: {dotted}: {message}"
    return f"{source}: {dotted}: {message} (got {_short(err.get('input'))})"


# pydantic's error types, in lrtrain's words ({…} filled from the error's context)
_PHRASES = {
    "missing": "is required",
    "int_parsing": "must be a whole number",
    "int_type": "must be a whole number",
    "int_from_float": "must be a whole number",
    "float_parsing": "must be a number",
    "float_type": "must be a number",
    "finite_number": "must be a finite number (not inf or nan)",
    "bool_parsing": "must be true or false",
    "bool_type": "must be true or false",
    "string_type": "must be text",
    "list_type": "must be a list, e.g. {list_example}",
    "dict_type": "must be a section of keys (a mapping)",
    "model_type": "must be a section of keys (a mapping)",
    "model_attributes_type": "must be a section of keys (a mapping)",
    "literal_error": "must be one of {choices}",
    "too_short": "needs at least {min_length} item(s)",
    "too_long": "takes at most {max_length} items",
    "greater_than": "must be > {gt}",
    "greater_than_equal": "must be ≥ {ge}",
    "less_than": "must be < {lt}",
    "less_than_equal": "must be ≤ {le}",
    "string_pattern_mismatch": "must be {pattern_meaning}",
    "none_required": "must be null",
}

_LIST_EXAMPLES = {"output.plots": "[loss, contour] ([] for none)"}

_PATTERN_MEANINGS = {
    "name": "letters, digits, '_', '.' or '-' (at most 64, starting with a letter or digit)",
    "device": "auto, cpu, cuda or cuda:N",
}


def _tags(expected: str) -> list[str]:
    """The allowed values pydantic lists in ``'a', 'b' or 'c'``."""
    return re.findall(r"'([^']*)'", expected)


def _dotted(path: list[str]) -> str:
    """``sweep.lrs[0]`` for the path ["sweep", "lrs", "0"]."""
    out = ""
    for part in path:
        out += f"[{part}]" if part.isdigit() else (f".{part}" if out else part)
    return out or "(top level)"


def _short(value: Any) -> str:
    short = reprlib.Repr()
    short.maxstring, short.maxother, short.maxlist, short.maxdict, short.maxlevel = 50, 50, 4, 4, 2
    return short.repr(value)


def _walk(loc: tuple[Any, ...], root: type[BaseModel]) -> tuple[list[str], type[BaseModel] | None]:
    """Turn a pydantic error location into the user's dotted path and the model that owns it.

    Discriminated-union tags (``data.x.uniform.low``) and type names of union branches are
    dropped from the path: the user wrote ``data.x.low``.
    """
    path: list[str] = []
    model: type[BaseModel] | None = root
    owner: type[BaseModel] | None = root
    for part in loc:
        if model is None:
            path.append(str(part))
            continue
        if isinstance(part, str) and part in model.model_fields:
            owner = model
            path.append(part)
            model = _model_of(model.model_fields[part].annotation)
            continue
        branch = _union_branch(model, part)
        if branch is not None:
            model = branch
            continue
        owner = model
        path.append(str(part))
        model = None
    return path, owner


def _model_of(annotation: Any) -> Any:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    args = getattr(annotation, "__args__", None)
    if args:
        models = [a for a in args if isinstance(a, type) and issubclass(a, BaseModel)]
        if len(models) == 1:
            return models[0]
        if models:
            return _UnionMarker(models)
    metadata = getattr(annotation, "__origin__", None)
    if metadata is not None:
        return _model_of(metadata)
    return None


class _UnionMarker:
    """Stands for a union of models while walking an error location."""

    model_fields: dict[str, Any] = {}  # noqa: RUF012

    def __init__(self, models: list[type[BaseModel]]) -> None:
        self.models = models


def _union_branch(model: Any, part: Any) -> Any:
    if not isinstance(model, _UnionMarker):
        return None
    for branch in model.models:
        kind = branch.model_fields.get("kind")
        if kind is not None and kind.default == part:
            return branch
        if branch.__name__ == part:
            return branch
    return None
