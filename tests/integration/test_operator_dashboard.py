"""The operators' dashboard graphs the metrics a cycle puts, under the very dimensions it puts them:
after a cycle in the simulated account, each graphed metric the cycle emits is one CloudWatch lists."""

from __future__ import annotations

import json
from pathlib import Path

from tagpatch_local.runner import SimulatedAccount

from .support import instance, run_ok

REPO = Path(__file__).resolve().parents[2]
# What every successful cycle emits: PatchMonitoring counts each outcome, zeros included; WindowUpsert
# counts its shortfalls; Step Functions counts the execution. The others need a failure or a refusal.
EVERY_CYCLE = {
    ("tagpatch", "Outcome_patched"),
    ("tagpatch", "Outcome_failed"),
    ("tagpatch", "Outcome_missed"),
    ("tagpatch", "PlanShortfalls"),
    ("AWS/States", "ExecutionsSucceeded"),
}


def test_the_metrics_a_cycle_emits_are_the_ones_the_dashboard_graphs() -> None:
    with SimulatedAccount(REPO / "template.yaml") as account:
        account.seed([instance("web", "sun-0200")])
        run_ok(account)
        # The schedule starts the org cycle, whose executions the dashboard graphs too.
        assert account.run_org_cycle({}).status == "SUCCEEDED"
        cloudwatch = account.client("cloudwatch")
        body = json.loads(
            cloudwatch.get_dashboard(DashboardName=account.physical_id("OperatorDashboard"))["DashboardBody"]
        )
        graphed = {
            (row[0], row[1], tuple(item for item in row[2:] if isinstance(item, str)))
            for widget in body["widgets"]
            if widget["type"] == "metric"
            for row in widget["properties"]["metrics"]
        }
        listed = {
            (
                metric["Namespace"],
                metric["MetricName"],
                tuple(value for dimension in metric["Dimensions"] for value in (dimension["Name"], dimension["Value"])),
            )
            for metric in cloudwatch.list_metrics()["Metrics"]
        }
        checked = [entry for entry in graphed if entry[:2] in EVERY_CYCLE]
        assert {entry[:2] for entry in checked} == EVERY_CYCLE
        for entry in checked:
            assert entry in listed, (entry, sorted(m for m in listed if m[:2] == entry[:2]))
