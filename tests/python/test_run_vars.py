"""The per-run values (as-of date, source time zone, membership stamp, refreshed
segments) reach the models through the environment (macros/run_var.sql), so a build with
a new as-of date reuses dbt's parse of the project; a --vars value still wins, as
`dbt build --vars` and the unit tests' overrides rely on."""

from __future__ import annotations

from segwise.transform.dbt import run_dbt

from conftest import make_settings

PROBE = ("select {{ segwise.as_of_date() }} as d, {{ segwise.to_utc('t') }} as t, "
         "'{{ segwise.refreshing() | join(',') }}' as r")
FULL_PARSE = ("Unable to do partial parsing", "Starting full parse")


def compiled(result) -> str:  # noqa: ANN001
    return result.output.split("Compiled inline node is:")[-1]


def test_a_new_as_of_date_is_applied_without_parsing_the_project_again(tmp_path):
    settings = make_settings(tmp_path)
    settings.duckdb_path.parent.mkdir(parents=True)
    first = run_dbt(settings, ["compile", "--inline", PROBE], dbt_vars={
        "as_of_date": "2026-01-02", "source_timezone": "Europe/Berlin",
        "refresh_segments": ["vip_customers", "winback"]})
    assert "cast('2026-01-02' as date)" in compiled(first)
    assert "'Europe/Berlin'" in compiled(first)
    assert "'vip_customers,winback' as r" in compiled(first)

    second = run_dbt(settings, ["compile", "--inline", PROBE],
                     dbt_vars={"as_of_date": "2026-03-04"})
    assert not any(s in second.output for s in FULL_PARSE), second.output[-2000:]
    # the new date, and nothing left over from the previous invocation's values
    assert "cast('2026-03-04' as date)" in compiled(second)
    assert "Berlin" not in compiled(second) and "'' as r" in compiled(second)

    # without a date: the run's start, as before
    third = run_dbt(settings, ["compile", "--inline", PROBE])
    assert "2026-03-04" not in compiled(third) and "as date)" in compiled(third)

    # a var on the command line (dbt run by hand, a unit test's overrides) wins
    by_hand = run_dbt(settings, ["compile", "--inline", PROBE, "--vars",
                                 '{"as_of_date": "2025-05-05"}'],
                      dbt_vars={"as_of_date": "2026-03-04"})
    assert "cast('2025-05-05' as date)" in compiled(by_hand)
