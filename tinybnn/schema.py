"""A small declarative schema for the JSON a model file carries, and its validator.

A model file's header is JSON written by tinybnn, but read back from a file
anyone can edit, so every field is checked once, on load, against a written
description of what it may hold before any of it is used. A schema is built
from a few node types::

    Int(low, high, odd)   an int (never a bool) with low <= value <= high (and odd)
    Float(low, high)      an int or float, finite, with low <= value <= high
    Bool()  Str(choices)  Null()
    List(item, max_len)   a list whose items all match ``item``
    Tuple(a, b, ...)      a list of exactly these items, in order
    Obj(required, optional, other)
                          a dict: ``required`` and ``optional`` map keys to
                          schemas; ``other`` (None: refused) matches any other key's value
    Either(a, b, ...)     the first alternative that matches
    Json()                any JSON value of bounded depth and size

:func:`validate` walks a value and a schema together and raises
:class:`SchemaError` naming the first field that does not match
(``checkpoint.history[3].loss``), what it expected, and what it found.
Standard library only.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from .errors import ModelFileError

#: lists and dicts in a header hold at most this many items (a forged 10**7-item
#: history would otherwise take seconds and gigabytes to check and to use)
MAX_ITEMS = 100_000
#: nesting depth of free-form JSON (metadata a user stored)
MAX_DEPTH = 32


class SchemaError(ModelFileError):
    """A header field does not match its schema; ``field`` is its dotted path."""

    def __init__(self, field_path: str, expected: str, value: Any):
        self.field = field_path
        super().__init__(f"field {field_path or '(header)'}: expected {expected}, got {shown(value)}")


def shown(value: Any) -> str:
    """A short, printable picture of a value found in a file."""
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _join(path: str, key: str | int) -> str:
    if isinstance(key, int):
        return f"{path}[{key}]"
    if not key.isprintable() or len(key) > 60:  # a forged key must not break the one-line error
        key = repr(key[:60])
    return f"{path}.{key}" if path else key


class Schema:
    """Base class: ``check(value, path)`` raises SchemaError or returns nothing."""

    def check(self, value: Any, path: str) -> None:
        raise NotImplementedError

    def describe(self) -> str:
        raise NotImplementedError


@dataclass
class Int(Schema):
    low: int | None = None
    high: int | None = None
    odd: bool = False

    def describe(self) -> str:
        if self.odd:
            return f"an odd integer in [{self.low}, {self.high}]"
        if self.low is not None and self.high is not None:
            return f"an integer in [{self.low}, {self.high}]"
        if self.low is not None:
            return f"an integer >= {self.low}"
        return "an integer" if self.high is None else f"an integer <= {self.high}"

    def check(self, value: Any, path: str) -> None:
        if (
            not isinstance(value, int)
            or isinstance(value, bool)
            or (self.low is not None and value < self.low)
            or (self.high is not None and value > self.high)
            or (self.odd and value % 2 == 0)
        ):
            raise SchemaError(path, self.describe(), value)


@dataclass
class Float(Schema):
    low: float | None = None
    high: float | None = None

    def describe(self) -> str:
        bounds = [f">= {self.low}" if self.low is not None else "", f"<= {self.high}" if self.high is not None else ""]
        return "a finite number" + "".join(f" {b}" for b in bounds if b)

    def check(self, value: Any, path: str) -> None:
        if (
            not isinstance(value, (int, float))
            or isinstance(value, bool)
            or not math.isfinite(value)
            or (self.low is not None and value < self.low)
            or (self.high is not None and value > self.high)
        ):
            raise SchemaError(path, self.describe(), value)


class Bool(Schema):
    def describe(self) -> str:
        return "true or false"

    def check(self, value: Any, path: str) -> None:
        if not isinstance(value, bool):
            raise SchemaError(path, self.describe(), value)


class Null(Schema):
    def describe(self) -> str:
        return "null"

    def check(self, value: Any, path: str) -> None:
        if value is not None:
            raise SchemaError(path, self.describe(), value)


@dataclass
class Str(Schema):
    choices: tuple[str, ...] | None = None
    max_len: int = 4096

    def describe(self) -> str:
        if self.choices is not None:
            return "one of " + ", ".join(repr(c) for c in self.choices)
        return f"a string of at most {self.max_len} characters"

    def check(self, value: Any, path: str) -> None:
        if (
            not isinstance(value, str)
            or len(value) > self.max_len
            or (self.choices is not None and value not in self.choices)
        ):
            raise SchemaError(path, self.describe(), value)


@dataclass
class List(Schema):
    item: Schema
    max_len: int = MAX_ITEMS
    min_len: int = 0

    def describe(self) -> str:
        return f"a list of {self.min_len} to {self.max_len} items"

    def check(self, value: Any, path: str) -> None:
        if not isinstance(value, list) or not self.min_len <= len(value) <= self.max_len:
            raise SchemaError(path, self.describe(), value)
        for i, item in enumerate(value):
            self.item.check(item, _join(path, i))


class Tuple(Schema):
    def __init__(self, *items: Schema):
        self.items = items

    def describe(self) -> str:
        return f"a list of {len(self.items)} items"

    def check(self, value: Any, path: str) -> None:
        if not isinstance(value, list) or len(value) != len(self.items):
            raise SchemaError(path, self.describe(), value)
        for i, (item, schema) in enumerate(zip(value, self.items)):
            schema.check(item, _join(path, i))


@dataclass
class Obj(Schema):
    required: dict[str, Schema] = field(default_factory=dict)
    optional: dict[str, Schema] = field(default_factory=dict)
    other: Schema | None = None  # schema of keys not named above; None refuses them

    def describe(self) -> str:
        return "an object"

    def check(self, value: Any, path: str) -> None:
        if not isinstance(value, dict) or len(value) > MAX_ITEMS:
            raise SchemaError(path, self.describe(), value)
        for key, schema in self.required.items():
            if key not in value:
                raise SchemaError(_join(path, key), schema.describe(), _Missing())
        for key, item in value.items():
            item_schema = self.required.get(key) or self.optional.get(key) or self.other
            if item_schema is None:
                known = ", ".join(sorted({*self.required, *self.optional}))
                raise SchemaError(_join(path, key), f"no field of this name here (known: {known})", item)
            item_schema.check(item, _join(path, key))


class _Missing:
    def __repr__(self) -> str:
        return "nothing (the field is missing)"


class Either(Schema):
    def __init__(self, *options: Schema):
        self.options = options

    def describe(self) -> str:
        return " or ".join(option.describe() for option in self.options)

    def check(self, value: Any, path: str) -> None:
        for option in self.options:
            try:
                option.check(value, path)
                return
            except SchemaError as error:
                if error.field != path:  # the value had the option's shape; report the inner field
                    raise
        raise SchemaError(path, self.describe(), value)


class Json(Schema):
    """Any JSON value: numbers finite, containers at most MAX_ITEMS long and MAX_DEPTH deep."""

    def describe(self) -> str:
        return f"JSON data (finite numbers, at most {MAX_DEPTH} levels)"

    def check(self, value: Any, path: str, depth: int = 0) -> None:
        if depth > MAX_DEPTH:
            raise SchemaError(path, self.describe(), value)
        if isinstance(value, float) and not math.isfinite(value):
            raise SchemaError(path, "a finite number", value)
        if isinstance(value, (list, dict)) and len(value) > MAX_ITEMS:
            raise SchemaError(path, f"at most {MAX_ITEMS:,} items", f"{len(value):,} items")
        if isinstance(value, list):
            for i, item in enumerate(value):
                self.check(item, _join(path, i), depth + 1)
        elif isinstance(value, dict):
            for key, item in value.items():
                self.check(item, _join(path, key), depth + 1)


def validate(value: Any, schema: Schema, path: str = "") -> None:
    """Raise :class:`SchemaError` naming the first field of ``value`` that ``schema`` refuses."""
    schema.check(value, path)


#: a size, count or index stored in a header (below 2**40, as array sizes are)
SIZE = Int(0, (1 << 40) - 1)
POSITIVE = Int(1, (1 << 40) - 1)
#: a kernel, stride or pad: one int or a pair, as layers accept them
PAIR = Either(Int(0, 1 << 20), Tuple(Int(0, 1 << 20), Int(0, 1 << 20)))


__all__ = [
    "Bool",
    "Either",
    "Float",
    "Int",
    "Json",
    "List",
    "MAX_ITEMS",
    "Null",
    "Obj",
    "PAIR",
    "POSITIVE",
    "SIZE",
    "Schema",
    "SchemaError",
    "Str",
    "Tuple",
    "validate",
]
