"""The cycle benchmark at 1,000 instances and the long-run benchmark over three cycles, as smoke checks:
they run and their figures add up.

No timing is asserted (speed belongs in benchmarks/results/); what is checked is that every function
the cycle ran is measured, that the cost is the sum of its parts, and that a rerun with nothing
changed writes no patching resource.
"""

from __future__ import annotations

import json
from pathlib import Path

from tests.benchmark_modules import bench_cycle, bench_long_run, bench_org


def test_the_cycle_benchmark_at_1000_instances_measures_every_function_and_prices_the_cycle() -> None:
    bench = bench_cycle()
    figures = bench.measure(1000, 20, 20, memory=True)
    first, after, rerun = (figures[label] for label in ("first_cycle", "after_window_runs", "rerun"))
    assert first["status"] == after["status"] == rerun["status"] == "SUCCEEDED"
    assert figures["window_runs"] == 20  # every weekly window ran once while the clock moved on
    # The cycle after the runs reads their results: a patch state call per 50 instances in scope.
    assert after["aws_calls_by_operation"]["ssm:DescribeInstancePatchStates"] >= 1
    assert rerun["resource_write_calls"] == 0
    for cycle in (first, after, rerun):
        functions = cycle["functions"]
        assert {"DiscoveryFunction", "TagValidationFunction", "PatchMonitoringFunction"} <= set(functions)
        assert all(entry["peak_mib"] > 0 and entry["seconds"] > 0 for entry in functions.values())
        cost = cycle["cost_usd"]
        parts = ("step_functions", "lambda", "s3_requests", "sns", "api_requests")
        assert abs(cost["total"] - sum(cost[part] for part in parts)) < 1e-5
        assert cost["step_functions"] == round(cycle["state_transitions"] * 0.025 / 1000, 6)
        invocations = sum(entry["invocations"] for entry in functions.values())
        assert cost["lambda"] >= invocations * 0.20 / 1_000_000
    assert first["functions"]["ApplyWindowChangesFunction"]["invocations"] >= 1  # the Map's iterations


def test_the_long_run_benchmark_samples_the_process_and_writes_what_it_measured(tmp_path: Path) -> None:
    bench = bench_long_run()
    demo = Path(bench.ROOT) / "fleets" / "demo.yaml"
    figures = bench.long_run(demo, 3, 2, tmp_path, None, "smoke")
    assert json.loads((tmp_path / "long-run-demo.json").read_text()) == figures
    assert (figures["completed_cycles"], figures["stopped"]) == (3, "finished")
    assert sum(figures["statuses"].values()) == 3
    # A sample before the first cycle, every second cycle, and after the last.
    assert [point["cycle"] for point in figures["samples"]] == [0, 2, 3]
    assert all(point["threads"] >= 1 and point["address_space_mib"] > 0 for point in figures["samples"])


def test_the_org_benchmark_attributes_every_call_to_a_target_or_the_org_cycle(tmp_path: Path) -> None:
    bench = bench_org()
    figures = bench.measure(
        1,
        ["us-east-1", "eu-west-1"],
        5,
        patch_groups=3,
        schedules=2,
        concurrency=2,
        out=tmp_path,
        folder=tmp_path,
    )
    assert json.loads((tmp_path / "org-1x2x5.json").read_text()) == figures
    assert figures["completed"] == ["first_cycle", "after_window_runs", "rerun"]
    for label in figures["completed"]:
        cycle = figures[label]
        assert set(cycle["targets"]) == {"200000000000/us-east-1", "200000000000/eu-west-1"}
        assert all(target["status"] == "SUCCEEDED" for target in cycle["targets"].values()), cycle["targets"]
        # Every call is the org cycle's own or one target's: none lost, none counted twice.
        parts = [cycle["org_functions"], *cycle["targets"].values()]
        assert sum(part["aws_calls"] for part in parts) == cycle["overall"]["aws_calls"]
        assert all(target["aws_calls"] > 0 and target["state_transitions"] > 0 for target in cycle["targets"].values())
        assert cycle["overall"]["org_state_transitions"] > 0
    # Each target's own calls reach its own Region's instances (EC2 through its spoke role).
    first = figures["first_cycle"]["targets"]
    assert all(target["aws_calls_by_operation"]["sts:AssumeRole"] >= 1 for target in first.values())
