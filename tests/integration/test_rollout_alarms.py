"""A rollout gate's CloudWatch alarms: TagValidation reads exactly the alarms the stack was deployed to read
(RolloutAlarmArns), holds the wave while one is in ALARM, and holds it, without asking, for an alarm the
stack may not read."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta
from pathlib import Path
from typing import Any

import yaml

from tagpatch_local.report import instance_lines, rollout_gates
from tagpatch_local.runner import ACCOUNT_ID, CycleResult, SimulatedAccount

from .support import instance, run_ok

REPO = Path(__file__).resolve().parents[2]
ALARM = "app-5xx"


def use_rollout(account: SimulatedAccount, folder: Path, alarms: list[str]) -> None:
    document = yaml.safe_load((REPO / "policy" / "patch-policy.yaml").read_text())
    document["rollout"] = {
        "waves": [
            {"name": "canary", "patch_groups": ["web-canary"]},
            {"name": "prod", "patch_groups": "rest", "gate": {"soak_hours": 0, "alarms": alarms}},
        ]
    }
    path = folder / f"policy-{len(alarms)}.yaml"
    path.write_text(yaml.safe_dump(document))
    account.use_policy(path)


def prod_gate(account: SimulatedAccount, result: CycleResult) -> dict[str, Any]:
    (gate,) = rollout_gates(account, result)
    prod = [line for line in instance_lines(account, result) if line["patch_group"] == "web"]
    assert prod and all(line["gate"] == gate and bool(line.get("held")) != gate["open"] for line in prod)
    return dict(gate)


def alarm_reads(result: CycleResult) -> int:
    # The recorder names a call by the service's signing name: CloudWatch signs as `monitoring`.
    return result.calls_by_function.get("TagValidationFunction", Counter())["monitoring:DescribeAlarms"]


def test_the_gate_holds_while_an_alarm_it_names_is_in_alarm(tmp_path: Path) -> None:
    with SimulatedAccount(REPO / "template.yaml", parameter_overrides={"RolloutAlarmArns": ""}) as probe:
        region = probe.region
    arn = f"arn:aws:cloudwatch:{region}:{ACCOUNT_ID}:alarm:{ALARM}"
    with SimulatedAccount(REPO / "template.yaml", parameter_overrides={"RolloutAlarmArns": arn}) as account:
        cloudwatch = account.client("cloudwatch")
        cloudwatch.put_metric_alarm(
            AlarmName=ALARM,
            Namespace="App",
            MetricName="5xx",
            Statistic="Sum",
            Period=60,
            EvaluationPeriods=1,
            Threshold=1,
            ComparisonOperator="GreaterThanThreshold",
        )
        cloudwatch.set_alarm_state(AlarmName=ALARM, StateValue="ALARM", StateReason="test: errors")
        use_rollout(account, tmp_path, [ALARM])
        account.seed(
            [instance("web-canary", "cron(0 2 ? * * *)", name="canary"), instance("web", "sun-0200", name="prod")]
        )
        assert "no Install run of wave canary" in prod_gate(account, run_ok(account))["reason"]
        account.advance(timedelta(days=1))
        run_ok(account)  # reads the canary's run
        firing = run_ok(account)
        assert prod_gate(account, firing)["reason"].endswith(f"alarm(s) {ALARM} in ALARM")
        assert alarm_reads(firing) == 1

        cloudwatch.set_alarm_state(AlarmName=ALARM, StateValue="OK", StateReason="test: quiet")
        assert prod_gate(account, run_ok(account))["open"] is True

        # An alarm the stack was not deployed to read is never asked for: the wave is held.
        use_rollout(account, tmp_path, [ALARM, "other"])
        unread = run_ok(account)
        assert prod_gate(account, unread)["reason"].endswith(f"alarm(s) {ALARM}, other could not be read")
        assert alarm_reads(unread) == 0
