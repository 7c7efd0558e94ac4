"""Progress of the long steps: dbt's JSON events give node n of N; validation counts its
batches; the CLI draws them as rich bars in a terminal only."""

from __future__ import annotations

import pytest

from segwise import progress
from segwise.transform.dbt import run_dbt

pytestmark = pytest.mark.xdist_group("demo")


@pytest.fixture
def recorded():
    events: list[tuple[str, int, int | None]] = []

    def listener(description, total):
        events.append((description, 0, total))
        return lambda completed, new_total=None: events.append(
            (description, completed, new_total))
    progress.listen(listener)
    yield events
    progress.listen(None)


def test_dbt_reports_node_n_of_total(demo_copy, recorded):
    result = run_dbt(demo_copy, ["build", "--select", "segment_sizes segment_overlap"])
    nodes = len([r for r in result.results if r["unique_id"].split(".")[0] != "operation"])
    steps = [(c, t) for d, c, t in recorded if d == "dbt build" and c > 0]
    assert nodes > 2 and [c for c, _ in steps] == list(range(1, nodes + 1))  # n of N
    assert {t for _, t in steps} == {nodes}
    assert recorded[-1] == ("dbt build", -1, None)  # the bar ends
    assert "segment_sizes" in result.output  # the text log is still there for errors



def test_load_and_generation_report_their_steps(tmp_path, recorded):
    from segwise.pipeline import step_load
    from segwise.raw_schema import RAW_TABLES

    from conftest import make_settings, quiet

    step_load(make_settings(tmp_path), "generated", 120, 1, None, 0.0, quiet)
    loads = [c for d, c, _ in recorded if d == "load: raw tables" and c > 0]
    assert loads == list(range(1, len(RAW_TABLES) + 1))
    assert [c for d, c, _ in recorded if d == "generate" and c > 0] == [1]  # one chunk
