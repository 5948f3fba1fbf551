"""The mapping file: source-system ids translated to this project's codes (docs/ingest.md).

A CSV with columns kind, source_id, target_id (and any others, e.g. a note, which are ignored):

    kind,source_id,target_id
    price,price_1MoBy5LkdIwHu7ixZhnattbh,GOLD_SUPPORT
    customer,cus_NffrFeUfNV2Hib,001000000000001AAA

Kinds are the ones the shapes look up (Lookup.kind in entitlements/ingest/shapes.py). It is user
data: found at the export's top level as mapping.csv, or given with --mapping. Checked before anything lands.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import duckdb

from entitlements.ingest.errors import IngestError

MAPPING_FILE = "mapping.csv"
COLUMNS = ("kind", "source_id", "target_id")


@dataclass(frozen=True)
class Mapping:
    path: Path | None
    rows: tuple[tuple[str, str, str], ...]  # (kind, source_id, target_id)

    def install(self, con: duckdb.DuckDBPyConnection) -> None:
        """The mapping as temp table _mapping, which the shapes' lookups join."""
        con.execute(
            "CREATE OR REPLACE TEMP TABLE _mapping (kind VARCHAR, source_id VARCHAR, target_id VARCHAR)"
        )
        if self.rows:
            con.executemany("INSERT INTO _mapping VALUES (?, ?, ?)", list(self.rows))

    @property
    def name(self) -> str:
        return str(self.path) if self.path else MAPPING_FILE


def load_mapping(path: Path | None, known_kinds: frozenset[str]) -> Mapping:
    """Read and check a mapping file; None (no file) gives an empty mapping."""
    if path is None:
        return Mapping(None, ())
    if not path.is_file():
        raise IngestError(f"{path}: mapping file not found.", source_file=str(path))
    rows: dict[tuple[str, str], tuple[int, str]] = {}
    problems = []
    with path.open(newline="", encoding="utf-8-sig") as fh:
        reader = csv.DictReader(fh)
        missing = [c for c in COLUMNS if c not in (reader.fieldnames or [])]
        if missing:
            raise IngestError(
                f"{path}: the mapping file needs columns {', '.join(COLUMNS)}; missing {', '.join(missing)}.",
                source_file=str(path),
                column=missing[0],
                line=1,
            )
        for record in reader:
            line = reader.line_num
            kind, source, target = ((record.get(c) or "").strip() for c in COLUMNS)
            if not kind and not source and not target:
                continue
            if kind not in known_kinds:
                problems.append(
                    f"line {line}: unknown kind '{kind}' (known: {', '.join(sorted(known_kinds))})"
                )
            elif not source or not target:
                empty = "source_id" if not source else "target_id"
                problems.append(f"line {line}, column {empty}: empty")
            elif (kind, source) in rows and rows[kind, source][1] != target:
                first, other = rows[kind, source]
                problems.append(
                    f"line {line}: {kind} '{source}' maps to '{target}',"
                    f" but line {first} maps it to '{other}'"
                )
            else:
                rows.setdefault((kind, source), (line, target))
    if problems:
        raise IngestError(
            f"{path}: the mapping file has {len(problems)} problem(s), so nothing was landed:\n"
            + "".join(f"  - {p}\n" for p in problems)
            + "Fix the mapping file and run the ingest again.",
            source_file=str(path),
        )
    return Mapping(path, tuple((kind, source, target) for (kind, source), (_, target) in rows.items()))
