"""Segment definitions are data, never code — attacked as an adversary would.

Each observed attack (issue #8, observations 1 and 2) is a test here, and a property test
generates definitions with hostile strings in every field. Its oracle does not trust the
compiler: the compiled model is rendered by a sandboxed Jinja that knows only the macros
a segment model may call (anything else — ``run_query``, ``{% do %}`` — fails), then run
on an in-memory DuckDB holding one customer whose traits and events equal the hostile
values: the customer must be a member (the values arrived intact), a near-miss customer
must not be, and no table may appear (no statement was smuggled in).
"""

from __future__ import annotations

import re
import textwrap
import time

import duckdb
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from jinja2 import StrictUndefined
from jinja2.sandbox import SandboxedEnvironment

from segwise.segments.compiler import compile_segment
from segwise.segments.spec import SegmentDefinitionError, load_definitions, load_traits
from segwise.settings import project_root

ROOT = project_root()
TRAITS = load_traits(ROOT)
AS_OF = "2026-07-01 00:00:00"


def _write(folder, body: str):
    (folder / "defs.yml").write_text(textwrap.dedent(body))
    return load_definitions(folder, TRAITS, project_dir=ROOT)


def _error(folder, body: str) -> str:
    with pytest.raises(SegmentDefinitionError) as exc:
        _write(folder, body)
    return str(exc.value)


def _segment(rule: str, extra: str = "", name: str = "attack") -> str:
    return (f"segments:\n  - name: {name}\n    description: d\n    owner: o\n{extra}"
            "    rule:\n" + textwrap.indent(textwrap.dedent(rule), "      "))


# ------------------------------------------------------------ an independent renderer
class _Namespace:
    def __init__(self, **fns):
        self.__dict__.update(fns)


class Rendered:
    """Renders a compiled segment model with only the calls a segment model may make."""

    def __init__(self) -> None:
        self.salts: list[str] = []
        self.refs: list[str] = []

    def render(self, sql: str) -> str:
        env = SandboxedEnvironment(undefined=StrictUndefined, autoescape=False)

        def ref(name: str) -> str:
            self.refs.append(name)
            return f'"{name}"'

        def is_holdout(column: str, salt: str, pct: float) -> str:
            self.salts.append(salt)
            assert re.fullmatch(r"[A-Za-z0-9_-]+", salt), salt
            return (f"(cast(('0x' || substr(md5('{salt}:' || {column}), 1, 8)) as bigint)"
                    f" % 10000 < {round(float(pct) * 100)})")

        def interval(part: str, amount: int) -> str:
            assert part in ("minute", "hour", "day") and isinstance(amount, int)
            return f"interval '{amount} {part}'"

        segwise = _Namespace(
            window_start=lambda part, n: f"(timestamp '{AS_OF}' - {interval(part, n)})",
            as_of_ts=lambda: f"timestamp '{AS_OF}'",
            run_started_ts=lambda: f"timestamp '{AS_OF}'",
            is_holdout=is_holdout)
        dbt = _Namespace(
            dateadd=lambda part, n, expr: f"({expr} + {interval(part, n)})",
            type_string=lambda: "varchar",
            concat=lambda parts: "concat(" + ", ".join(parts) + ")")
        return env.from_string(sql).render(ref=ref, config=lambda **_: "", segwise=segwise,
                                           dbt=dbt)


def _warehouse(profile_rows: list[dict], event_rows: list[dict]) -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    doc = yaml.safe_load((ROOT / "models" / "marts" / "_marts__models.yml").read_text())
    cols = next(m["columns"] for m in doc["models"] if m["name"] == "customer_profile")
    con.execute('create table "customer_profile" ('
                + ", ".join(f'"{c["name"]}" {c["data_type"]}' for c in cols) + ")")
    con.execute('create table "int_customer_events" (customer_id varchar, event_type varchar, '
                "occurred_at timestamp, category varchar, product_id varchar, device varchar, "
                "campaign_id varchar)")
    for row in profile_rows:
        con.execute(f'insert into "customer_profile" ({", ".join(row)}) values '
                    f'({", ".join("?" for _ in row)})', list(row.values()))
    for row in event_rows:
        con.execute(f'insert into "int_customer_events" ({", ".join(row)}) values '
                    f'({", ".join("?" for _ in row)})', list(row.values()))
    return con


def _tables(con) -> set[str]:
    return {r[0] for r in con.execute("select table_name from duckdb_tables()").fetchall()}


def _members(seg, profile_rows, event_rows) -> tuple[set[str], Rendered]:
    renderer = Rendered()
    sql = renderer.render(compile_segment(seg))
    con = _warehouse(profile_rows, event_rows)
    before = _tables(con)
    rows = con.execute(sql).fetchall()
    assert _tables(con) == before, "the compiled model created a table"
    con.close()
    return {r[0] for r in rows}, renderer


# ------------------------------------------------------------ observation 1
BRACE_SPLIT = [
    """{'{ run_query("create table raw.x as select 1") }'}""",
    """{'% do run_query("create table raw.x as select 1") %'}""",
    """{'# comment #'}""",
    """}'}{'{""",
]


@pytest.mark.parametrize("payload", BRACE_SPLIT)
def test_no_template_delimiter_forms_from_a_trait_or_where_value(tmp_path, payload):
    """Quotes are not stripped from a value after validation, so no delimiter can form:
    the compiled model renders with no template call but the whitelisted macros, and the
    value reaches the database exactly as written."""
    rule = (f"all:\n  - {{trait: loyalty_tier, op: '=', value: {yaml.safe_dump(payload).strip()}}}"
            f"\n  - event: product_view\n    where: {{category: {yaml.safe_dump(payload).strip()}}}"
            "\n    within: {last: 7, unit: days}\n")
    (seg,) = _write(tmp_path, _segment(rule))
    compiled = compile_segment(seg)
    assert payload not in compiled
    for delimiter in ("{{ run_query", "{% do", "{#"):
        assert delimiter not in compiled
    members, _ = _members(
        seg, [{"customer_id": "c1", "loyalty_tier": payload},
              {"customer_id": "c2", "loyalty_tier": payload.replace("'", "")}],
        [{"customer_id": cid, "event_type": "product_view", "occurred_at": "2026-06-30",
          "category": payload} for cid in ("c1", "c2")])
    assert members == {"c1"}


# ------------------------------------------------------------ observation 2
def test_a_name_with_a_trailing_newline_is_refused(tmp_path):
    body = ('segments:\n  - name: "tnl\\n"\n    description: "x\\nselect 1"\n    owner: o\n'
            "    rule: {trait: orders_count, op: '>', value: 0}\n")
    assert "a segment name is" in _error(tmp_path, body)
    body = ("segments:\n  - name: ok_name\n    description: d\n    owner: o\n"
            '    rule: {in_segment: "ok_name\\n"}\n')
    assert "bad segment name" in _error(tmp_path, body)


@pytest.mark.parametrize("name", ["dim_customers", "customer_profile", "segment_catalog",
                                  "rfm_segment_map", "segment_membership_snapshot"])
def test_a_name_equal_to_a_dbt_node_is_refused(tmp_path, name):
    msg = _error(tmp_path, _segment("{trait: orders_count, op: '>', value: 0}\n", name=name))
    assert f"segment '{name}' at name" in msg and "already a dbt" in msg


@pytest.mark.parametrize("salt", ["abc\\", "o'neil", "a b", "{{x}}", "", "x" * 65])
def test_holdout_salt_outside_the_safe_alphabet_is_refused(tmp_path, salt):
    extra = f"    holdout_pct: 10\n    holdout_salt: {yaml.safe_dump(salt).splitlines()[0]}\n"
    msg = _error(tmp_path, _segment("{trait: orders_count, op: '>', value: 0}\n", extra))
    assert "at holdout_salt" in msg


def test_a_safe_salt_reaches_the_holdout_formula_unchanged(tmp_path):
    extra = "    holdout_pct: 10\n    holdout_salt: spring-2026_a\n"
    (seg,) = _write(tmp_path, _segment("{trait: orders_count, op: '>', value: 0}\n", extra))
    _, renderer = _members(seg, [{"customer_id": "c1", "orders_count": 1}], [])
    assert renderer.salts == ["spring-2026_a"]


@pytest.mark.parametrize("value", ["'2026-13-45'", "'2026-02-30'", "'0000-01-01'",
                                   "'2026-06-01 25:00'"])
def test_impossible_dates_are_refused(tmp_path, value):
    msg = _error(tmp_path, _segment(f"{{trait: signup_at, op: '<', value: {value}}}\n"))
    assert "rule.trait.value" in msg and "date" in msg


def test_unquoted_yaml_dates_are_real_dates(tmp_path):
    (seg,) = _write(tmp_path, _segment("{trait: signup_at, op: '<', value: 2026-06-01}\n"))
    members, _ = _members(seg, [{"customer_id": "c1", "signup_at": "2026-05-31 23:59:59"},
                                {"customer_id": "c2", "signup_at": "2026-06-01 00:00:00"}], [])
    assert members == {"c1"}


@pytest.mark.parametrize("rule, path", [
    ("{trait: orders_count, op: '>', value: %s}\n", "rule.trait.value"),
    ("{event: order, count: {'>=': %s}, within: {last: 7, unit: days}}\n", "rule.event.count"),
    ("{trait: monetary_total, op: between, value: [0, %s]}\n", "rule.trait.value[1]"),
])
def test_numbers_beyond_64_bits_are_refused(tmp_path, rule, path):
    msg = _error(tmp_path, _segment(rule % ("1" + "0" * 400)))
    assert path in msg and "64-bit" in msg


def test_the_largest_64_bit_count_compares_as_large(tmp_path):
    (seg,) = _write(tmp_path, _segment(
        "{trait: orders_count, op: '<', value: 9223372036854775807}\n"))
    members, _ = _members(seg, [{"customer_id": "c1", "orders_count": 10**18}], [])
    assert members == {"c1"}


def test_duplicate_keys_are_refused_anywhere(tmp_path):
    body = ("segments:\n  - name: dup\n    description: d\n    owner: o\n    priority: 1\n"
            "    priority: 2\n    rule: {trait: orders_count, op: '>', value: 0}\n")
    assert "duplicate key 'priority'" in _error(tmp_path, body)
    body = ("segments:\n  - name: dup\n    description: d\n    owner: o\n"
            "    rule: {trait: orders_count, op: '>', value: 0, value: 5}\n")
    assert "duplicate key 'value'" in _error(tmp_path, body)
    body = "segments: []\nsegments: []\n"
    assert "duplicate key 'segments'" in _error(tmp_path, body)


def test_unknown_top_level_keys_are_refused(tmp_path):
    body = _segment("{trait: orders_count, op: '>', value: 0}\n") + "segmnets: []\n"
    assert "unknown top-level key(s) ['segmnets']" in _error(tmp_path, body)


def test_a_yaml_alias_bomb_is_refused_in_well_under_a_second(tmp_path):
    lines = ['a0: &a0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for i in range(1, 10):
        lines.append(f"a{i}: &a{i} [{','.join(['*a' + str(i - 1)] * 9)}]")
    bomb = "\n".join(lines) + "\nsegments: *a9\n"
    assert len(bomb.encode()) < 700
    start = time.perf_counter()
    msg = _error(tmp_path, bomb)
    assert time.perf_counter() - start < 1.0
    assert "aliases" in msg


@pytest.mark.parametrize("field, value", [
    ("tags", "['ok', \"x') }}{{ run_query('select 1') }}{{ ('\"]"),
    ("tags", "[\"Bad Tag\"]"),
    ("owner", "\"{'{ x }'}\""),
    ("description", "\"a } b\""),
])
def test_free_text_fields_cannot_carry_template_syntax(tmp_path, field, value):
    fields = {"description": "d", "owner": "o", field: value}
    body = ("segments:\n  - name: fields\n"
            + "".join(f"    {k}: {v}\n" for k, v in fields.items())
            + "    rule: {trait: orders_count, op: '>', value: 0}\n")
    assert f"at {field}" in _error(tmp_path, body)


# ------------------------------------------------------------ the property test
FRAGMENTS = ["{{", "}}", "{%", "%}", "{#", "#}", "{'{", "}'}", "{", "}", "%", "#", "'", "''",
             '"', "\\", "\\'", "--", "/*", "*/", ";", "\n", "\r", "\t", "\x00", "\u2028",
             "\u200b", "\ufeff", "$$", "`", "drop table x", "run_query(", ") }}", "é", "日本",
             " ", "a", "Z", "0", "_", "-", ":"]
hostile_text = st.lists(st.sampled_from(FRAGMENTS) | st.text(
    st.characters(blacklist_categories=("Cs",)), max_size=3), max_size=8).map("".join)
safe_name = st.from_regex(r"\A[a-z][a-z0-9_]{0,20}\Z")
maybe_hostile = st.one_of(hostile_text, safe_name)


@st.composite
def definitions(draw):
    values = [draw(hostile_text) for _ in range(4)]
    seg = {
        "name": draw(st.one_of(safe_name.map(lambda s: "fz_" + s), hostile_text)),
        "description": draw(maybe_hostile),
        "owner": draw(maybe_hostile),
        "tags": draw(st.lists(maybe_hostile, max_size=3)),
        "holdout_pct": draw(st.sampled_from([0, 10, 12.5])),
        "rule": {"all": [
            {"trait": "loyalty_tier", "op": "=", "value": values[0]},
            {"trait": "country", "op": "in", "value": [values[1], values[2]]},
            {"event": "product_view", "where": {"category": values[3]},
             "within": {"last": 7, "unit": "days"}},
        ]},
    }
    if draw(st.booleans()):
        seg["holdout_salt"] = draw(maybe_hostile)
    return seg, values


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                   HealthCheck.function_scoped_fixture])
@given(case=definitions())
def test_hostile_definitions_are_refused_with_a_location_or_compiled_as_data(tmp_path, case):
    raw, values = case
    (tmp_path / "defs.yml").write_text(yaml.safe_dump({"segments": [raw]}, allow_unicode=True))
    try:
        (seg,) = load_definitions(tmp_path, TRAITS, project_dir=ROOT)
    except SegmentDefinitionError as exc:
        message = str(exc)
        assert message.startswith(str(tmp_path / "defs.yml")), message
        assert exc.path or exc.segment is None or "segment" in message
        return
    hit = {"customer_id": "hit", "loyalty_tier": values[0], "country": values[1]}
    miss = {"customer_id": "miss", "loyalty_tier": values[0] + "x", "country": values[2]}
    events = [{"customer_id": cid, "event_type": "product_view",
               "occurred_at": "2026-06-30 12:00:00", "category": values[3]}
              for cid in ("hit", "miss")]
    members, renderer = _members(seg, [hit, miss], events)
    assert members == {"hit"}
    assert renderer.salts == [raw.get("holdout_salt", raw["name"])]
    assert set(renderer.refs) <= {"customer_profile", "int_customer_events"}
