"""Quoting for the few SQL fragments that cannot be bound as parameters (paths in table functions,
identifiers, the type structs of DuckDB's readers)."""

from __future__ import annotations

from collections.abc import Mapping


def quote_literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def quote_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def struct_literal(types: Mapping[str, str]) -> str:
    """{'name': 'TYPE', ...}: the form read_csv(types=...) and read_json(columns=...) take."""
    return "{" + ", ".join(f"{quote_literal(k)}: {quote_literal(v)}" for k, v in types.items()) + "}"
