"""Schemas of the files evolve reads from outside, one module per file kind, and their errors.

`problem` (problem.yaml), `known` (known.yaml) and `catalogue` (the known-results catalogue)
each declare their file's shape once as pydantic models; `validate` runs one and turns the
first thing wrong into one line that names the file, the key path and what is allowed:

    problems/x/problem.yaml: cascade[1].threshold: must be a number, got 'abc'

pydantic is imported only here and in the schema modules, which are imported only when a file
is read, so `evolve --help` does not pay for it.
"""

from __future__ import annotations

from collections.abc import Iterator
from types import UnionType
from typing import Annotated, Any, Union, get_args, get_origin

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    Strict,
    TypeAdapter,
    ValidationError,
)


def _yaml_number(value: Any) -> Any:
    if isinstance(value, str):
        try:
            return float(value)  # PyYAML reads 1e-6 (no dot) as text, not as a number
        except ValueError:
            return value  # the strict check then says "must be a number, got 'abc'"
    return value


# Numbers as YAML and JSON give them: an int is a number, a bool or other text is not.
Number = Annotated[float, BeforeValidator(_yaml_number), Strict(), Field(allow_inf_nan=False)]
Integer = Annotated[int, Strict()]
Text = Annotated[str, Strict()]
Flag = Annotated[bool, Strict()]


class Closed(BaseModel):
    """A mapping whose every key is declared: a misspelt key is an error, not ignored."""

    model_config = ConfigDict(extra="forbid")


class Open(BaseModel):
    """A mapping with some keys declared and others kept as they are (free-form records)."""

    model_config = ConfigDict(extra="allow")


def validate(schema: Any, data: Any, where: str) -> Any:
    """`data` as the `schema` (a model class or any type pydantic takes, such as
    `dict[str, Model]`), or ValueError: `where: key.path: what is allowed, got what`."""
    adapter = _adapter(schema)
    try:
        return adapter.validate_python(data)
    except ValidationError as exc:
        errors = exc.errors(include_url=False)
        text, shown_errors = _first(schema, errors)
        more = len(errors) - shown_errors
        raise ValueError(f"{where}: {text}" + (f" (and {more} more)" if more else "")) from None


def _first(schema: Any, errors: list[dict[str, Any]]) -> tuple[str, int]:
    """The first error in words, and how many of `errors` that text covers. A value that
    fits no member of a union gets one error per member, each under the member's name in its
    location ("bounds.lower.dict[str,any]"): they are said together, under the key's path."""
    first = errors[0]
    loc = tuple(first["loc"])
    at = _union_tag(schema, loc)
    if at is None:
        return explain(schema, first), 1
    group = [e for e in errors if tuple(e["loc"][:at]) == loc[:at]]
    shallow = [e for e in group if len(e["loc"]) == at + 1]
    if len(shallow) == len(group):
        words = dict.fromkeys(
            _WORDS.get(e["type"], "must fit " + str(e["loc"][at])).removeprefix("must be ")
            for e in group
        )
        text = f"must be {' or '.join(words)}, got {shown(first['input'])}"
        return f"{key_path(loc[:at]) or 'top level'}: {text}", len(group)
    deepest = max(group, key=lambda e: len(e["loc"]))
    return explain(schema, {**deepest, "loc": (*loc[:at], *deepest["loc"][at + 1 :])}), len(group)


def _union_tag(schema: Any, loc: tuple[Any, ...]) -> int | None:
    """The position in `loc` of a union member's name, if the path goes through a union."""
    for i, node in enumerate(_path_types(schema, loc)):
        if node is None or i == len(loc):
            return None
        if get_origin(node) in (Union, UnionType):
            return i
    return None


def _path_types(schema: Any, loc: tuple[Any, ...]) -> Iterator[Any]:
    """The types along `loc` inside `schema`, through models, dicts, lists and Optional (each
    unwrapped): the one each part of `loc` is looked up in, then the one at its end; None
    last where the path leaves what the schema declares."""
    node = schema
    for part in loc:
        node = _unwrap(node)
        yield node
        fields = getattr(node, "model_fields", None)
        if fields is not None:
            if part not in fields:
                yield None
                return
            node = fields[part].annotation
        elif get_origin(node) in (dict, list):
            node = get_args(node)[-1]  # a key or an index: the values' type
        else:
            yield None
            return
    yield _unwrap(node)


_ADAPTERS: dict[int, tuple[Any, TypeAdapter]] = {}


def _adapter(schema: Any) -> TypeAdapter:
    # Building a validator costs milliseconds and a problem is loaded in every worker: build
    # each schema's once (keyed by identity, since an Annotated type need not be hashable).
    held = _ADAPTERS.get(id(schema))
    if held is None or held[0] is not schema:
        held = _ADAPTERS[id(schema)] = (schema, TypeAdapter(schema))
    return held[1]


def key_path(loc: tuple[Any, ...]) -> str:
    """A pydantic location as the file's key path: `cascade[1].threshold`."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif part != "[key]":
            out += f".{part}" if out else str(part)
    return out


def shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _declared(schema: Any, loc: tuple[Any, ...]) -> Any:
    """The type declared at `loc` inside `schema`, through models, dicts, lists and Optional."""
    *_, last = _path_types(schema, loc)
    return last


def _unwrap(node: Any) -> Any:
    """Annotated[X, ...] -> X; X | None -> X."""
    while True:
        if get_origin(node) is Annotated:
            node = get_args(node)[0]
        elif get_origin(node) in (Union, UnionType):
            args = [a for a in get_args(node) if a is not type(None)]
            if len(args) != 1:
                return node
            node = args[0]
        else:
            return node


def _description(schema: Any, loc: tuple[Any, ...]) -> str:
    fields = getattr(_declared(schema, loc[:-1]), "model_fields", None) or {}
    info = fields.get(loc[-1]) if loc else None
    return f" ({info.description})" if info is not None and info.description else ""


_WORDS = {
    "int_type": "must be an integer",
    "int_parsing": "must be an integer",
    "int_from_float": "must be an integer",
    "float_type": "must be a number",
    "float_parsing": "must be a number",
    "finite_number": "must be a finite number",
    "date_type": "must be a date",
    "date_from_datetime_parsing": "must be a date",
    "bool_type": "must be true or false",
    "bool_parsing": "must be true or false",
    "string_type": "must be text",
    "string_too_short": "must not be empty",
    "list_type": "must be a list",
    "dict_type": "must be a mapping",
    "model_type": "must be a mapping",
    "model_attributes_type": "must be a mapping",
}


def explain(schema: Any, error: dict[str, Any]) -> str:
    """One pydantic error in the file's words: `key.path: what is allowed, got what`."""
    loc, kind, ctx = tuple(error["loc"]), error["type"], error.get("ctx") or {}
    path, got = key_path(loc), f", got {shown(error.get('input'))}"
    if loc and loc[-1] == "[key]":
        where, key = key_path(loc[:-2]) or "top level", shown(loc[-2])
        if kind == "value_error":
            return f"{where}: {error['msg'].removeprefix('Value error, ')}"
        if kind == "enum":
            return f"{where}: unknown key {key}; allowed: {ctx['expected']}"
        return f"{where}: key {key} {_WORDS.get(kind, 'is not allowed: ' + error['msg'])}"
    if kind == "extra_forbidden":
        fields = getattr(_declared(schema, loc[:-1]), "model_fields", None)
        allowed = f"; allowed: {', '.join(fields)}" if fields else ""
        return f"{key_path(loc[:-1]) or 'top level'}: unknown key {shown(loc[-1])}{allowed}"
    if kind == "missing":
        return f"{path}: is required{_description(schema, loc)}"
    if kind == "enum" or kind == "literal_error":
        what = f"must be {ctx.get('expected')}"
    elif kind in _WORDS:
        what = _WORDS[kind]
    elif kind == "greater_than":
        what = "must be positive" if ctx.get("gt") == 0 else f"must be greater than {ctx['gt']}"
    elif kind == "greater_than_equal":
        what = f"must be at least {ctx['ge']}"
    elif kind in ("less_than_equal", "less_than"):
        what = f"must be at most {ctx.get('le', ctx.get('lt'))}"
    elif kind == "too_short":
        what = f"must have at least {ctx.get('min_length')} item(s)"
    elif kind == "value_error":
        # Our own checks: the message is complete (it says what it got where that helps).
        text = error["msg"].removeprefix("Value error, ")
        return f"{path}: {text}" if path else text
    else:
        text = error["msg"]
        what = text[:1].lower() + text[1:]
    return f"{path or 'top level'}: {what}{got}"
