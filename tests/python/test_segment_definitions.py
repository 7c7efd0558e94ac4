"""Segment definitions are validated before any SQL exists: every kind of mistake fails
with a message naming the file, the segment and the path; literals cannot inject SQL."""

from __future__ import annotations

import json
import textwrap

import pytest

from segwise.segments import definitions
from segwise.segments.compiler import compile_segment
from segwise.segments.spec import SegmentDefinitionError, load_definitions, load_traits
from segwise.settings import project_root

ROOT = project_root()
TRAITS = load_traits(ROOT)


def _load(tmp_path, body: str):
    (tmp_path / "defs.yml").write_text(textwrap.dedent(body))
    return load_definitions(tmp_path, TRAITS)


def _segment(rule: str, extra: str = "", name: str = "bad_one") -> str:
    return (f"segments:\n  - name: {name}\n    description: d\n    owner: o\n{extra}"
            f"    rule:\n" + textwrap.indent(textwrap.dedent(rule), "      "))


def _error(tmp_path, body: str) -> str:
    with pytest.raises(SegmentDefinitionError) as exc:
        _load(tmp_path, body)
    return str(exc.value)


def test_project_definitions_are_valid_and_compiled_models_up_to_date():
    segs = definitions(ROOT)
    assert len(segs) >= 12
    compiled = ROOT / "models" / "segments" / "compiled"
    for seg in segs:
        assert (compiled / f"{seg.name}.sql").read_text() == compile_segment(seg), (
            f"{seg.name}: run `segwise segments compile`")


def test_a_rule_on_a_score_no_model_produces_fails_with_the_scores_that_exist(tmp_path):
    msg = _error(tmp_path, _segment("trait: upsell_probability\nop: '>='\nvalue: 0.7\n"))
    assert "defs.yml: segment 'bad_one' at rule.trait" in msg
    assert "unknown trait 'upsell_probability': no model produces it" in msg
    assert "churn_probability" in msg and "cluster_label" in msg


def test_rules_on_the_scores_that_exist_are_valid(tmp_path):
    from segwise.segments.spec import load_traits, score_traits

    traits = load_traits(ROOT)
    assert set(score_traits()) <= set(traits)  # every score is a customer_profile column
    segs = _load(tmp_path, _segment("all:\n  - {trait: churn_probability, op: '>=', value: 0.7}"
                                    "\n  - {trait: cluster_label, op: '=', value: Loyal}\n"))
    assert segs[0].name == "bad_one"


def test_unknown_column(tmp_path):
    msg = _error(tmp_path, _segment("trait: orderz\nop: '>'\nvalue: 1\n"))
    assert "defs.yml: segment 'bad_one' at rule.trait" in msg
    assert "unknown trait 'orderz'" in msg and "orders_count" in msg


def test_wrong_type(tmp_path):
    msg = _error(tmp_path, _segment("trait: orders_count\nop: '>='\nvalue: many\n"))
    assert "rule.trait.value" in msg and "orders_count is numeric" in msg
    msg = _error(tmp_path, _segment("trait: loyalty_tier\nop: between\nvalue: [a, b]\n"))
    assert "'between' needs a numeric or date trait" in msg
    msg = _error(tmp_path, _segment("trait: has_email_consent\nop: '>'\nvalue: true\n"))
    assert "boolean" in msg


def test_unknown_event_type(tmp_path):
    msg = _error(tmp_path, _segment("event: add_to_wishlist\nwithin: {last: 7, unit: days}\n"))
    assert "rule.event" in msg and "unknown event type 'add_to_wishlist'" in msg


def test_unknown_event_property(tmp_path):
    msg = _error(tmp_path, _segment(
        "event: product_view\nwhere: {colour: red}\nwithin: {last: 7, unit: days}\n"))
    assert "rule.event.where.colour" in msg


def test_bad_window(tmp_path):
    msg = _error(tmp_path, _segment("event: order\nwithin: {last: -3, unit: days}\n"))
    assert "rule.event.within.last" in msg and "bad window" in msg
    msg = _error(tmp_path, _segment("event: order\nwithin: {last: 3, unit: weeks}\n"))
    assert "bad window unit 'weeks'" in msg
    msg = _error(tmp_path, _segment("event: order\nwithin: {between_days_ago: [60, 30]}\n"))
    assert "0 <= A < B" in msg


def test_cycle(tmp_path):
    body = textwrap.dedent("""\
        segments:
          - name: seg_a
            description: d
            owner: o
            rule: {in_segment: seg_b}
          - name: seg_b
            description: d
            owner: o
            rule:
              all:
                - in_segment: seg_c
                - trait: orders_count
                  op: ">"
                  value: 0
          - name: seg_c
            description: d
            owner: o
            rule: {in_segment: seg_a}
        """)
    msg = _error(tmp_path, body)
    assert "segment reference cycle: seg_a -> seg_b -> seg_c -> seg_a" in msg


def test_unknown_segment_reference_and_duplicates(tmp_path):
    assert "unknown segment 'nope'" in _error(tmp_path, _segment("in_segment: nope\n"))
    body = _segment("trait: orders_count\nop: '>'\nvalue: 0\n", name="twin")
    assert "duplicate segment name" in _error(tmp_path, body + body.split("segments:\n")[1])


def test_typos_in_keys_are_errors(tmp_path):
    msg = _error(tmp_path, _segment("trait: orders_count\nop: '>'\nvalue: 0\n",
                                    extra="    priorty: 3\n"))
    assert "unknown key(s) ['priorty']" in msg
    msg = _error(tmp_path, _segment("all:\n  - trait: orders_count\n    op: '>'\n    valu: 0\n"))
    assert "rule.all[0].trait" in msg and "valu" in msg


def test_message_condition_bounds(tmp_path):
    msg = _error(tmp_path, _segment("message: opened\ncount: {'>=': 6}\nof_last: 5\n"))
    assert "cannot opened 6 of the last 5" in msg


@pytest.mark.parametrize("payload", [
    "x'; drop table marts.dim_customers; --",
    "gold' or '1'='1",
])
def test_sql_injection_in_literals_is_quoted(tmp_path, payload):
    body = _segment(f"trait: loyalty_tier\nop: '='\nvalue: {json.dumps(payload)}\n")
    (seg,) = _load(tmp_path, body)
    sql = compile_segment(seg)
    # every quote of the payload is spelled chr(39) inside one concatenated literal
    spelled = "concat(" + ", ".join(
        "chr(39)" if part == "" else f"'{part}'"
        for part in _interleave(payload.split("'"))) + ")"
    assert f"profile.loyalty_tier = {spelled}" in sql
    assert "'" + payload.split("'")[0] + "'" in sql and payload not in sql


def _interleave(pieces: list[str]) -> list[str]:
    """'a', 'b', 'c' → 'a', '', 'b', '', 'c' minus empty pieces (a quote is '')."""
    out: list[str] = []
    for i, piece in enumerate(pieces):
        if i:
            out.append("")
        if piece:
            out.append(piece)
    return out


@pytest.mark.parametrize("payload", ["{{ run_query('drop table x') }}", "{% do x %}"])
def test_template_injection_is_rejected(tmp_path, payload):
    body = _segment(f"trait: loyalty_tier\nop: '='\nvalue: {json.dumps(payload)}\n")
    assert "template or control characters" in _error(tmp_path, body)


def test_identifier_injection_is_an_unknown_trait(tmp_path):
    msg = _error(tmp_path, _segment("trait: 'orders_count > 0; drop table x; --'\nop: '>'\n"
                                    "value: 1\n"))
    assert "unknown trait" in msg


def test_rule_version_tracks_meaning_not_formatting(tmp_path):
    a = _load(tmp_path, _segment("trait: orders_count\nop: '>='\nvalue: 2\n"))[0]
    b = _load(tmp_path, _segment("{trait: orders_count, op: '>=', value: 2}\n"))[0]
    c = _load(tmp_path, _segment("trait: orders_count\nop: '>='\nvalue: 3\n"))[0]
    assert a.rule_version == b.rule_version != c.rule_version


def test_destinations_declare_a_sync_mode_and_guards(tmp_path):
    rule = "trait: orders_count\nop: '>'\nvalue: 0\n"
    (seg,) = _load(tmp_path, _segment(rule, extra=(
        "    destinations:\n      - file\n      - {name: mailchimp, mode: mirror, "
        "max_removal_pct: 5, min_size: 100}\n      - klaviyo\n")))
    assert seg.destinations == ["file", "mailchimp", "klaviyo"]
    assert seg.sync_settings("mailchimp").mode == "mirror"
    assert seg.sync_settings("mailchimp").max_removal_pct == 5.0
    assert seg.sync_settings("mailchimp").min_size == 100
    assert seg.sync_settings("klaviyo").mode == "upsert"
    assert seg.sync_settings("klaviyo").max_removal_pct is None
    bad = {"      - {name: mailchimp, mode: mirrror}\n": "destinations[0].mode",
           "      - {name: mailchimp, mood: mirror}\n": "unknown key(s) ['mood']",
           "      - mailchimpp\n": "unknown destination 'mailchimpp'",
           "      - hubspot\n      - hubspot\n": "listed twice",
           "      - {name: file, mode: mirror}\n": "the file export has no sync mode",
           "      - {name: sendgrid, max_removal_pct: -1}\n": "max_removal_pct must be",
           "      - {name: sendgrid, min_size: 1.5}\n": "min_size must be a whole number"}
    for lines, message in bad.items():
        msg = _error(tmp_path, _segment(rule, extra="    destinations:\n" + lines))
        assert message in msg, msg


def test_custom_attributes_are_typed_traits_read_from_their_own_model(tmp_path):
    """The attributes declared in dbt_project.yml are traits of their declared kind; a
    rule on one joins customer_attributes, a rule without one does not."""
    assert TRAITS["loyalty_points"] == "numeric" and TRAITS["region"] == "string"
    assert TRAITS.attributes == {"age_band", "region", "loyalty_points", "is_wholesale"}
    msg = _error(tmp_path, _segment("trait: loyalty_points\nop: contains\nvalue: '1'\n"))
    assert "'contains' needs a text trait; loyalty_points is numeric" in msg
    msg = _error(tmp_path, _segment("trait: is_wholesale\nop: '='\nvalue: 'yes'\n"))
    assert "rule.trait.value" in msg
    (seg,) = _load(tmp_path, _segment("all:\n  - trait: region\n    op: in\n    value: [north]\n"
                                      "  - trait: loyalty_points\n    op: '>'\n    value: 100\n"
                                      "  - trait: m_score\n    op: '>='\n    value: 4\n"))
    sql = compile_segment(seg)
    assert sql.count("ref('customer_attributes')") == 1 and sql.count("left join attributes") == 1
    assert "attributes.region in ('north')" in sql and "profile.m_score >= 4" in sql
    (plain,) = _load(tmp_path, _segment("trait: m_score\nop: '>='\nvalue: 4\n"))
    assert "customer_attributes" not in compile_segment(plain)


@pytest.mark.parametrize(("declared", "message"), [
    ("{m_score: number}", "already customer_profile traits"),
    ("{Region: text}", "a name is a lower-case identifier"),
    ("{region: date}", "type must be one of ['boolean', 'number', 'text']"),
    ("{region: {type: text, values: [a]}}", "unknown key(s) ['values']"),
])
def test_a_bad_attribute_declaration_is_named(tmp_path, declared, message):
    import re
    import shutil

    from segwise.segments.spec import load_traits as traits_of

    (tmp_path / "models" / "marts").mkdir(parents=True)
    shutil.copy(ROOT / "models" / "marts" / "_marts__models.yml", tmp_path / "models" / "marts")
    project = (ROOT / "dbt_project.yml").read_text()
    project = re.sub(r"  custom_attributes:\n(    .*\n)+", f"  custom_attributes: {declared}\n",
                     project)
    (tmp_path / "dbt_project.yml").write_text(project)
    with pytest.raises(SegmentDefinitionError) as exc:
        traits_of(tmp_path)
    assert message in str(exc.value) and "custom_attributes" in str(exc.value)


@pytest.mark.parametrize("rule, needs", [
    ("event: product_view\nwithin: {last: 3, unit: days}\n", "looks 72 hours back"),
    ("sequence:\n  first: add_to_cart\n  then_not: [order]\n  within: {last: 1, unit: hours}"
     "\nlookback: {last: 49, unit: hours}\n", "looks 49 hours back"),
    ("message: opened\ncount: {'>=': 1}\nof_last: 3\n", "counts the last sends"),
])
def test_a_trigger_segment_must_fit_in_the_recent_events(tmp_path, rule, needs):
    (seg,) = _load(tmp_path, _segment(rule, extra="    tags: [trigger]\n"))
    with pytest.raises(SegmentDefinitionError, match=needs) as err:
        compile_segment(seg)
    assert "bad_one" in str(err.value) and "recent_events_hours" in str(err.value)
    (plain,) = _load(tmp_path, _segment(rule))  # untagged: the whole stream
    assert "ref('int_customer_events')" in compile_segment(plain)


def test_a_trigger_segment_reads_the_recent_events(tmp_path):
    rule = "event: add_to_cart\nwithin: {last: 48, unit: hours}\n"
    (seg,) = _load(tmp_path, _segment(rule, extra="    tags: [trigger]\n"))
    assert "ref('int_customer_events_recent')" in compile_segment(seg)
    assert "ref('int_customer_events')" not in compile_segment(seg)


RULE = "trait: orders_count\nop: '>='\nvalue: 1\n"


@pytest.mark.parametrize("variants, why", [
    ("{a: 50, b: 40}", "must sum to 100, got 90"),
    ("{a: 100}", "2 to 10 variant names"),
    ("{a: 50, B-x: 50}", "variant name 'B-x'"),
    ("{a: 50.5, b: 49.5}", "whole percentage"),
    ("{a: 0, b: 100}", "whole percentage"),
    ("[a, b]", "must map 2 to 10"),
    ("{\"x'; drop table t; --\": 50, b: 50}", "variant name"),
])
def test_bad_variants_are_refused_with_the_reason(tmp_path, variants, why):
    msg = _error(tmp_path, _segment(RULE, f"    variants: {variants}\n"))
    assert "at variants" in msg and why in msg


def test_variants_compile_and_change_the_rule_version(tmp_path):
    (plain,) = _load(tmp_path, _segment(RULE, name="ab"))
    (ab,) = _load(tmp_path, _segment(RULE, "    variants: {subject_a: 45, subject_b: 45, "
                                           "control: 10}\n", name="ab"))
    assert ab.variants == (("subject_a", 45), ("subject_b", 45), ("control", 10))
    assert ab.control_variant == "control" and plain.control_variant is None
    assert ab.rule_version != plain.rule_version
    (first,) = _load(tmp_path, _segment(RULE, "    variants: {x: 30, y: 70}\n", name="ab"))
    assert first.control_variant == "x"  # without a 'control', the first is the baseline
    from segwise.segments.compiler import compile_segment

    sql = compile_segment(ab)
    assert "segwise.variant_of('customer_id', 'ab', [['subject_a', 45], ['subject_b', 45], " \
           "['control', 10]])" in sql
