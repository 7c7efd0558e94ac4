"""`segwise load --mapping FILE`: the user's own files (CSV, Parquet, NDJSON) into the raw
contract, described by one small mapping file.

```yaml
timezone: America/New_York        # the files' naive timestamps; raw gets UTC
tables:
  orders:
    files: exports/transactions_*.csv      # glob(s), relative to the mapping file
    columns: {order_id: TXN_ID, customer_id: CUST, ordered_at: TXN_DATE, order_total: TOTAL}
    formats: {ordered_at: "%m/%d/%Y"}      # strptime formats for timestamps
    constants: {currency: USD}             # a value for every row
  crm_contacts:
    files: exports/customers.ndjson
    columns: {customer_id: id, email: mail}
    attributes: {region: area}             # custom attributes (dbt var custom_attributes)
absent: [web_events, email_campaigns, email_events]   # sources this business lacks
```

``raw.crm_contact_attributes`` need not be mentioned: it is filled from the contacts'
``attributes`` (one row per loaded contact and attribute), or mapped as a file of its own.

Structural problems (an unknown table or key, a mapped column a file lacks, a required
contract column nobody maps, no file matching) are one error naming the file, the table,
the missing and the available columns — and nothing is changed. Type problems are per row:
a value that does not parse (``TOTAL = 'abc'``, a 13th month) keeps its row out of raw and
records it, with the reason and the whole source row, in ``ops.load_rejections``. So
file rows = loaded + rejected, always.

``replace`` swaps every raw table in one transaction (all or nothing); ``append`` adds the
rows of each file not loaded before (by SHA-256 of its bytes, recorded in
``ops.load_files``), so re-running it adds nothing.
"""

from __future__ import annotations

import csv
import hashlib
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import pandas as pd
import pyarrow as pa
import yaml

from segwise import strict_yaml
from segwise.errors import ConfigurationError
from segwise.load.warehouse import (
    DUCKDB_TYPES,
    RawContractError,
    create_empty_raw_table,
    forget_in_raw,
    raw_table_exists,
)
from segwise.ops import utcnow as _utcnow
from segwise.raw_schema import CONTRACT_BY_NAME, TS, raw_relation, raw_schema_of
from segwise.warehouse import as_connection, ensure_ops

FORMATS = {".csv": "csv", ".tsv": "csv", ".txt": "csv", ".parquet": "parquet",
           ".ndjson": "ndjson", ".jsonl": "ndjson", ".json": "ndjson"}
TABLE_KEYS = {"files", "format", "columns", "formats", "constants", "delimiter", "attributes"}
ATTRIBUTES_TABLE = "crm_contact_attributes"  # filled from crm_contacts' `attributes`
TOP_KEYS = {"timezone", "tables", "absent"}
MODES = ("replace", "append")


class MappingError(ConfigurationError):
    """The mapping file itself is wrong (located: file and key path)."""


@dataclass
class TableMapping:
    table: str
    files: list[Path]
    format: str | None = None
    columns: dict[str, str] = field(default_factory=dict)  # contract column -> file column
    formats: dict[str, str] = field(default_factory=dict)
    constants: dict[str, object] = field(default_factory=dict)
    delimiter: str | None = None
    # crm_contacts only: custom attribute (declared in dbt_project.yml) -> file column
    attributes: dict[str, str] = field(default_factory=dict)


@dataclass
class LoadMapping:
    path: Path
    timezone: str = "UTC"
    tables: dict[str, TableMapping] = field(default_factory=dict)
    absent: list[str] = field(default_factory=list)


@dataclass
class LoadReport:
    load_id: str
    mode: str
    rows: dict[str, int] = field(default_factory=dict)  # rows now in each raw table
    loaded: dict[str, int] = field(default_factory=dict)  # rows this load added
    rejected: dict[str, int] = field(default_factory=dict)
    skipped_files: list[str] = field(default_factory=list)  # append: seen before


def _strings(value, where: str) -> list[str]:
    values = [value] if isinstance(value, str) else value
    if not isinstance(values, list) or not values or not all(
            isinstance(v, str) and v for v in values):
        raise MappingError(f"{where}: expected a glob or a list of globs")
    return values


def _mapping_of(value, where: str, keys: set[str] | None = None) -> dict:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise MappingError(f"{where}: expected a mapping")
    if keys is not None:
        unknown = sorted(set(value) - keys)
        if unknown:
            raise MappingError(f"{where}: unknown key(s) {unknown} (allowed: {sorted(keys)})")
    return value


def read_mapping(path: Path, declared: set[str] | None = None) -> LoadMapping:
    """Parse and check a mapping file; every error names the file and the key path.
    ``declared``: the custom attributes a contacts file may map (default: those declared
    in the project's dbt_project.yml)."""
    if declared is None:
        from segwise.attributes import declared_attributes
        from segwise.settings import project_root

        declared = set(declared_attributes(project_root()))
    try:
        doc = strict_yaml.load(path.read_text())
    except OSError as exc:
        raise MappingError(f"{path}: cannot read the mapping file: {exc}") from exc
    except (yaml.YAMLError, strict_yaml.StrictYAMLError) as exc:
        raise MappingError(f"{path}: not valid YAML: {exc}") from exc
    doc = _mapping_of(doc, str(path), TOP_KEYS)
    out = LoadMapping(path=path, timezone=str(doc.get("timezone") or "UTC"))
    tables = _mapping_of(doc.get("tables"), f"{path}: tables")
    absent = doc.get("absent") or []
    if not isinstance(absent, list) or not all(isinstance(a, str) for a in absent):
        raise MappingError(f"{path}: absent: expected a list of raw table names")
    for name in [*tables, *absent]:
        if name not in CONTRACT_BY_NAME:
            raise MappingError(f"{path}: {name!r} is not a raw table (the contract has "
                               f"{sorted(CONTRACT_BY_NAME)})")
    for name in absent:
        if name in tables:
            raise MappingError(f"{path}: {name!r} is both mapped and absent")
        if CONTRACT_BY_NAME[name].required:
            raise MappingError(f"{path}: {name!r} is a required table and cannot be absent")
    missing = sorted(set(CONTRACT_BY_NAME) - set(tables) - set(absent) - {ATTRIBUTES_TABLE})
    if missing:
        raise MappingError(f"{path}: map or declare absent every raw table; not mentioned: "
                           f"{missing}")
    out.absent = list(absent)
    for name, spec in tables.items():
        where = f"{path}: tables.{name}"
        spec = _mapping_of(spec, where, TABLE_KEYS)
        contract = {c.name for c in CONTRACT_BY_NAME[name].columns}
        columns = _mapping_of(spec.get("columns"), f"{where}.columns")
        formats = _mapping_of(spec.get("formats"), f"{where}.formats")
        constants = _mapping_of(spec.get("constants"), f"{where}.constants")
        for key, group in (("columns", columns), ("formats", formats),
                           ("constants", constants)):
            unknown = sorted(set(group) - contract)
            if unknown:
                raise MappingError(f"{where}.{key}: {unknown} not in raw.{name}'s contract "
                                   f"({sorted(contract)})")
        both = sorted(set(columns) & set(constants))
        if both:
            raise MappingError(f"{where}: {both} both mapped to a column and given a constant")
        attributes = _mapping_of(spec.get("attributes"), f"{where}.attributes")
        if attributes and name != "crm_contacts":
            raise MappingError(f"{where}.attributes: custom attributes come with "
                               "crm_contacts")
        if attributes and ATTRIBUTES_TABLE in tables:
            raise MappingError(f"{where}.attributes: {ATTRIBUTES_TABLE} is mapped too; "
                               "fill it from one place")
        undeclared = sorted(set(attributes) - declared)
        if undeclared:
            raise MappingError(f"{where}.attributes: {undeclared} not declared in "
                               "dbt_project.yml vars.custom_attributes (declared: "
                               f"{sorted(declared)})")
        if spec.get("format") not in (None, "csv", "parquet", "ndjson"):
            raise MappingError(f"{where}.format: csv, parquet or ndjson")
        files: list[Path] = []
        for pattern in _strings(spec.get("files"), f"{where}.files"):
            found = sorted(p for p in path.parent.glob(pattern) if p.is_file())
            if not found:
                raise MappingError(f"{where}.files: no file matches {pattern!r} (relative "
                                   f"to {path.parent})")
            files += found
        out.tables[name] = TableMapping(
            name, files, spec.get("format"), {k: str(v) for k, v in columns.items()},
            {k: str(v) for k, v in formats.items()}, constants, spec.get("delimiter"),
            {k: str(v) for k, v in attributes.items()})
    return out


def _reader(mapping: TableMapping, path: Path, rejects: str) -> str:
    """The DuckDB table function reading one file. CSV is read with a fixed dialect
    (RFC 4180: ``,`` or the mapping's delimiter, ``"`` quotes) and the header's names, so
    no sniffing can misread it, and a malformed line (a wrong number of fields, an
    unterminated quote) is stored in the temp table ``rejects`` instead of failing the
    file."""
    kind = mapping.format or FORMATS.get(path.suffix.lower())
    if kind is None:
        raise MappingError(f"{path} (raw.{mapping.table}): unknown file type {path.suffix!r}: "
                           "set `format: csv | parquet | ndjson`")
    quoted = str(path).replace("'", "''")
    if kind == "csv":
        delim = mapping.delimiter or ","
        with path.open(newline="", encoding="utf-8", errors="replace") as handle:
            header = next(csv.reader(handle, delimiter=delim), [])
        if not header or len(set(header)) != len(header):
            raise MappingError(f"{path} (raw.{mapping.table}): the first line must name "
                               f"every column once (found {header})")
        columns = "{" + ", ".join(f"{_literal(h)}: 'VARCHAR'" for h in header) + "}"
        return (f"read_csv('{quoted}', auto_detect = false, header = true, "
                f"delim = {_literal(delim)}, quote = '\"', escape = '\"', "
                f"columns = {columns}, ignore_errors = true, store_rejects = true, "
                f"rejects_table = '{rejects}', rejects_scan = '{rejects}_scan')")
    if kind == "ndjson":
        return f"read_json('{quoted}', format = 'newline_delimited')"
    return f"read_parquet('{quoted}')"


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _parse(column, source: str, fmt: str | None, zone: str) -> str:
    """SQL turning a text value into the contract type; null when it does not parse."""
    text = f"nullif(trim({source}), '')"
    if column.type == pa.string():
        return text
    if column.type == TS:
        value = (f"try_strptime({text}, {_literal(fmt)})" if fmt
                 else f"try_cast({text} as timestamp)")
        if zone not in ("UTC", "Etc/UTC"):
            value = (f"cast(timezone('UTC', timezone({_literal(zone)}, "
                     f"cast({value} as timestamp))) as timestamp)")
        return value
    return f"try_cast({text} as {DUCKDB_TYPES[column.type]})"


def _as_text(column: str, json_typed: set[str]) -> str:
    """A file column's value as text. NDJSON fields that mix types (``5`` and ``"C7"``)
    are read as JSON, whose text form keeps the quotes: their string value is taken."""
    if column in json_typed:
        return f"json_extract_string(s.{_ident(column)}, '$')"
    return f"cast(s.{_ident(column)} as varchar)"


def _stage_file(con: duckdb.DuckDBPyConnection, mapping: TableMapping, path: Path,
                zone: str, index: int) -> tuple[str, list[str]]:
    """A temp table of the file's rows parsed into the contract (``_rejected``: the first
    value that did not parse), or the structural problems that stop the load."""
    relation = f"source_{mapping.table}_{index}"
    rejects = f"rejects_{relation}"
    try:
        con.execute(f"create or replace temp view {relation} as select * from "
                    f"{_reader(mapping, path, rejects)}")
        described = con.execute(f"describe {relation}").fetchall()
        available = [r[0] for r in described]
        json_typed = {r[0] for r in described if str(r[1]).upper() == "JSON"}
    except (duckdb.Error, OSError, UnicodeError) as exc:
        return relation, [f"{path} (raw.{mapping.table}): cannot be read: "
                          f"{str(exc).splitlines()[0]}"]
    contract = CONTRACT_BY_NAME[mapping.table]
    source_of = {c.name: mapping.columns.get(c.name, c.name) for c in contract.columns}
    missing_source = sorted({source_of[c] for c in mapping.columns
                             if source_of[c] not in available}
                            | {c for c in mapping.attributes.values() if c not in available})
    unmapped = sorted(c.name for c in contract.columns if c.required
                      and c.name not in mapping.constants and source_of[c.name] not in available)
    problems = []
    if missing_source or unmapped:
        problems.append(
            f"{path} (raw.{mapping.table}): "
            + "; ".join(([f"mapped column(s) {missing_source} not in the file"]
                         if missing_source else [])
                        + ([f"required column(s) {unmapped} neither in the file nor mapped"]
                           if unmapped else []))
            + f" (the file has {available})")
        return relation, problems
    selects, checks = [], []
    for c in contract.columns:
        if c.name in mapping.constants:
            value = mapping.constants[c.name]
            selects.append(f"cast({_literal(str(value))} as {DUCKDB_TYPES[c.type]}) "
                           f"as {_ident(c.name)}")
            continue
        if source_of[c.name] not in available:
            selects.append(f"cast(null as {DUCKDB_TYPES[c.type]}) as {_ident(c.name)}")
            continue
        raw = _as_text(source_of[c.name], json_typed)
        parsed = _parse(c, raw, mapping.formats.get(c.name), zone)
        selects.append(f"{parsed} as {_ident(c.name)}")
        if c.type != pa.string():
            checks.append(f"when nullif(trim({raw}), '') is not null and {parsed} is null "
                          f"then {_literal(f'unparseable {c.name}: ')} || {raw}"
                          + (f" || {_literal(' (format ' + mapping.formats[c.name] + ')')}"
                             if c.name in mapping.formats else ""))
    rejected = f"case {' '.join(checks)} end" if checks else "cast(null as varchar)"
    selects += [f"nullif(trim({_as_text(column, json_typed)}), '') as "
                f"{_ident('_attribute_' + name)}" for name, column in mapping.attributes.items()]
    con.execute(f"""
        create or replace temp table staged_{relation} as
        select {', '.join(selects)}, {rejected} as _rejected,
               row_number() over () as _row, to_json(s) as _payload
        from {relation} as s""")
    # lines the CSV reader could not split into the header's fields: rejected as they are
    has_rejects = con.execute("select count(*) from duckdb_tables() where table_name = ?",
                              [rejects]).fetchall()[0][0]
    con.execute(f"create or replace temp table malformed_{relation} as " + (
        f"""select line as _row, 'malformed line: ' || min(error_message) as _rejected,
                   to_json({{'line': line, 'text': any_value(csv_line)}}) as _payload
            from {rejects} group by line""" if has_rejects else
        "select cast(null as bigint) as _row, cast(null as varchar) as _rejected, "
        "cast(null as json) as _payload where false"))
    return relation, problems


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _unpivot_attributes(con, contacts: TableMapping, rel: str) -> None:
    """The custom attributes of a staged contacts file's loaded rows, long (one row per
    contact and mapped attribute, a blank value as null: the CRM cleared it), staged like
    a file of ``raw.crm_contact_attributes``. Staging types the values."""
    con.execute(f"create or replace temp table staged_attributes_{rel} as " + " union all ".join(
        f"select customer_id, {_literal(name)} as attribute, "
        f"{_ident('_attribute_' + name)} as value, updated_at, "
        "cast(null as varchar) as _rejected, _row, _payload "
        f"from staged_{rel} where _rejected is null" for name in contacts.attributes))
    con.execute(f"create or replace temp table malformed_attributes_{rel} as select * from "
                f"malformed_{rel} where false")


def load_mapped(con: duckdb.DuckDBPyConnection, mapping: LoadMapping,
                mode: str = "replace") -> LoadReport:
    """Load the mapped files (see the module docstring). Checks every file first; then
    one transaction for the raw tables, ``ops.load_files`` and ``ops.load_rejections``."""
    con = as_connection(con)
    if mode not in MODES:
        raise MappingError(f"mode must be one of {MODES}, got {mode!r}")
    ensure_ops(con)
    report = LoadReport(uuid.uuid4().hex[:12], mode)
    staged: dict[str, list[tuple[Path, str, str]]] = {}
    problems: list[str] = []
    seen = ({(t, h) for t, h in con.execute(
        "select raw_table, sha256 from ops.load_files").fetchall()} if mode == "append"
        else set())
    index = 0
    for name, table in mapping.tables.items():
        for path in table.files:
            digest = _sha256(path)
            if (name, digest) in seen:
                report.skipped_files.append(str(path))
                continue
            index += 1
            relation, found = _stage_file(con, table, path, mapping.timezone, index)
            problems += found
            staged.setdefault(name, []).append((path, relation, digest))
    if problems:
        raise RawContractError("the files do not fit the mapping and the raw contract; "
                               "nothing was loaded:\n  " + "\n  ".join(problems))
    contacts = mapping.tables.get("crm_contacts")
    if contacts and contacts.attributes:
        for path, rel, digest in staged.get("crm_contacts", []):
            _unpivot_attributes(con, contacts, rel)
            staged.setdefault(ATTRIBUTES_TABLE, []).append((path, f"attributes_{rel}", digest))
    now = _utcnow()
    for schema in {raw_schema_of(name) for name in CONTRACT_BY_NAME}:
        con.execute(f"create schema if not exists {schema}")
    con.execute("begin transaction")
    try:
        for name in CONTRACT_BY_NAME:
            parts = staged.get(name, [])
            columns = ", ".join(_ident(c.name) for c in CONTRACT_BY_NAME[name].columns)
            rows = " union all ".join(
                f"select {columns}, timestamp '{pd.Timestamp(p.stat().st_mtime, unit='s')}' "
                f"as _loaded_at from staged_{rel} where _rejected is null"
                for p, rel, _ in parts)
            if mode == "replace" or not raw_table_exists(con, name):
                con.execute(f"drop table if exists {raw_relation(name)}")
                create_empty_raw_table(con, name)
            if rows:
                before = con.execute(f"select count(*) from {raw_relation(name)}"
                                     ).fetchall()[0][0]
                con.execute(f"insert into {raw_relation(name)} by name {rows}")
                report.loaded[name] = con.execute(
                    f"select count(*) from {raw_relation(name)}").fetchall()[0][0] - before
            for path, rel, digest in parts:
                failed = (f"(select _row, _rejected, _payload from staged_{rel} where "
                          f"_rejected is not null union all select * from malformed_{rel})")
                bad = con.execute(f"select count(*) from {failed}").fetchall()[0][0]
                report.rejected[name] = report.rejected.get(name, 0) + bad
                con.execute(f"""insert into ops.load_rejections
                    select ?, ?, ?, _row, _rejected, _payload, ? from {failed}""",
                            [report.load_id, str(path), name, now])
                total = bad + con.execute(f"select count(*) from staged_{rel} where "
                                          "_rejected is null").fetchall()[0][0]
                con.execute("insert into ops.load_files values (?, ?, ?, ?, ?, ?, ?, ?)",
                            [report.load_id, name, str(path), digest, mode, total - bad, bad,
                             now])
        forget_in_raw(con)  # a source may still send people erased with `segwise forget`
        for name in CONTRACT_BY_NAME:
            report.rows[name] = con.execute(f"select count(*) from {raw_relation(name)}"
                                            ).fetchall()[0][0]
        con.execute("commit")
    except BaseException:
        con.execute("rollback")
        raise
    return report


__all__ = ["LoadMapping", "LoadReport", "MappingError", "load_mapped", "read_mapping"]
