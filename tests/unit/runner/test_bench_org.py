"""bench_org's attribution of invocations to targets and its projection to a larger organization: the
projection is arithmetic on the measured figures, so it is checked on figures made up here."""

from __future__ import annotations

from typing import Any

import pytest

from tests.benchmark_modules import bench_org

ORG_FUNCTIONS = frozenset({"ListTargetsFunction", "SummarizeTargetsFunction"})
HOME = "123456789012/us-east-1"


def test_an_invocation_belongs_to_the_target_its_cycle_or_its_input_names() -> None:
    bench = bench_org()
    member = {"account_id": "200000000001", "region": "eu-west-1"}
    assert bench.target_of("DiscoveryFunction", {"cycle": {"target": member}}, ORG_FUNCTIONS, HOME) == (
        "200000000001/eu-west-1"
    )
    # PrepareCycle gets the execution input before there is a cycle.
    assert bench.target_of("PrepareCycleFunction", {"input": {"target": member}}, ORG_FUNCTIONS, HOME) == (
        "200000000001/eu-west-1"
    )
    # A patch cycle started without a target acts in the hub's own account and Region.
    assert bench.target_of("PrepareCycleFunction", {"input": {}}, ORG_FUNCTIONS, HOME) == HOME
    assert bench.target_of("SummarizeTargetsFunction", {"results": [{"target": member}]}, ORG_FUNCTIONS, HOME) == (
        bench.ORG
    )


def _target(status: str, seconds: float, transitions: int, calls: int, lambda_usd: float) -> dict[str, Any]:
    return {
        "status": status,
        "handler_seconds": seconds,
        "state_transitions": transitions,
        "aws_calls": calls,
        "functions": {"DiscoveryFunction": {"invocations": 3}, "PatchMonitoringFunction": {"invocations": 2}},
        "cost_usd": {"lambda": lambda_usd, "lambda_gb_seconds": 10.0, "s3_requests": 0.001, "sns": 0.0001},
    }


def _figures(instances_per_target: int, *targets: dict[str, Any]) -> dict[str, Any]:
    return {
        "accounts": len(targets),
        "regions": ["us-east-1"],
        "instances_per_target": instances_per_target,
        "after_window_runs": {
            "targets": {f"20000000000{index}/us-east-1": target for index, target in enumerate(targets)},
            "overall": {
                "org_state_transitions": 20,
                "org_history_events": 100,
                "org_max_payload_bytes": 2000,
                "child_max_payload_bytes": 30000,
            },
            "org_functions": {
                "functions": {"SummarizeTargetsFunction": {"memory_mb": 256, "seconds": 1.0, "invocations": 1}},
                "aws_calls_by_operation": {},
                "handler_seconds": 1.0,
            },
            "artifact_bytes_written": {"runs/": 4000, "compliance/": 1000, "org-runs/": 50},
        },
    }


def test_the_projection_scales_the_measured_targets_to_the_organization_in_waves_of_the_map() -> None:
    bench = bench_org()
    figures = _figures(5000, _target("SUCCEEDED", 30.0, 40, 500, 0.01), _target("SUCCEEDED", 50.0, 60, 700, 0.03))
    projected = bench.projection(figures, {"runs/": 90, "compliance/": 400}, targets=200, instances=1_000_000)
    assert projected["scale"] == 1.0  # measured at the projected instances per target
    assert (projected["max_concurrency"], projected["waves"]) == (40, 5)
    # Five waves of the mean target's 40 s, and the org cycle's 1 s per measured target for 200 targets.
    assert projected["wall_seconds_mean_target"] == 5 * 40.0 + 100 * 1.0
    assert projected["wall_seconds_slowest_target"] == 5 * 50.0 + 100 * 1.0
    assert projected["state_transitions"] == 50 * 200 + 20 * 100
    assert projected["org_history_events"] == 100 * 100
    assert projected["org_max_payload_bytes"] == 2000 * 100
    assert projected["aws_calls"] == 600 * 200
    assert projected["lambda_invocations"] == 5 * 200
    assert projected["peak_lambda_concurrency"] == 40 * 4 + 1
    cost = projected["daily_cost_usd"]
    assert cost["step_functions"] == round((50 * 200 + 20 * 100) * 0.025 / 1000, 4)
    assert cost["total"] == pytest.approx(sum(v for k, v in cost.items() if k != "total"), abs=1e-3)
    # Bytes each target writes a day, times the targets, kept as long as the lifecycle rule keeps them;
    # a prefix no rule expires is not priced.
    assert projected["snapshot_bytes_per_day"] == {"runs/": 2000 * 200, "compliance/": 500 * 200}
    assert projected["stored_gb_steady"] == round((2000 * 200 * 90 + 500 * 200 * 400) / 1e9, 2)


def test_the_projection_scales_per_target_work_with_instances_but_not_state_transitions() -> None:
    bench = bench_org()
    figures = _figures(500, _target("SUCCEEDED", 10.0, 40, 100, 0.01))
    projected = bench.projection(figures, {}, targets=200, instances=1_000_000, concurrency=10)
    assert projected["scale"] == 10.0
    assert projected["waves"] == 20
    assert projected["aws_calls"] == 100 * 10 * 200
    assert projected["state_transitions"] == 40 * 200 + 20 * 200


def test_the_projection_uses_only_targets_that_succeeded_and_refuses_when_none_did() -> None:
    bench = bench_org()
    mixed = _figures(5000, _target("SUCCEEDED", 10.0, 40, 100, 0.01), _target("FAILED", 1.0, 5, 10, 0.001))
    projected = bench.projection(mixed, {}, targets=2, instances=10_000)
    assert (projected["targets_succeeded"], projected["targets_measured"]) == (1, 2)
    assert projected["aws_calls"] == 100 * 2
    with pytest.raises(ValueError, match="no target succeeded"):
        bench.projection(_figures(5000, _target("FAILED", 1.0, 5, 10, 0.001)), {})


def test_the_projected_org_payload_scales_the_map_output_not_every_state() -> None:
    """Only the Map's output (its items and results) grows with the targets; a larger state that does
    not (one iteration's own, with its child's caught cause) is kept as measured. Results measured
    before the Map's output was recorded are projected as before, every state scaled."""
    bench = bench_org()
    figures = _figures(5000, _target("SUCCEEDED", 30.0, 40, 500, 0.01), _target("SUCCEEDED", 50.0, 60, 700, 0.03))
    figures["after_window_runs"]["overall"]["org_map_output_bytes"] = 1500
    projected = bench.projection(figures, {"runs/": 90, "compliance/": 400}, targets=200, instances=1_000_000)
    assert projected["org_max_payload_bytes"] == 1500 * 100
    figures["after_window_runs"]["overall"]["org_map_output_bytes"] = 10
    projected = bench.projection(figures, {"runs/": 90, "compliance/": 400}, targets=200, instances=1_000_000)
    assert projected["org_max_payload_bytes"] == 2000  # the largest state, which does not grow
