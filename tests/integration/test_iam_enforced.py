"""IAM is enforced on the functions in a real cycle: each runs as its own role, and only what that allows works."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import boto3
import pytest
import yaml
from botocore.exceptions import ClientError
from moto.sts.models import sts_backends

from tagpatch_local.runner import SimulatedAccount

from .support import instance, run_ok, template_variant

REPO = Path(__file__).resolve().parents[2]
LEDGER_KEY = "state/baseline-registrations.json"


def statements(document: dict[str, Any], function: str) -> list[dict[str, Any]]:
    (policy,) = [p for p in document["Resources"][function]["Properties"]["Policies"] if "Statement" in p]
    found: list[dict[str, Any]] = policy["Statement"]
    return found


def failed_state(result: Any) -> dict[str, Any]:
    """ReportFailure's input: the state that failed and its error."""
    for event in result.events:
        if event["type"] == "TaskStateEntered" and event["stateEnteredEventDetails"]["name"] == "ReportFailure":
            document: dict[str, Any] = json.loads(event["stateEnteredEventDetails"]["input"])
            return document
    raise AssertionError("ReportFailure never ran")


def test_each_function_runs_under_its_own_role() -> None:
    with SimulatedAccount(REPO / "template.yaml", config_recorder=True) as account:  # every function deployed
        account.seed([instance("web", "sun-0200")])
        run_ok(account)
        iam = account.client("iam")
        for logical_id in account.template.functions():
            role = account.role_arn(logical_id).rsplit("/", 1)[1]
            names = iam.list_role_policies(RoleName=role)["PolicyNames"]
            deployed = [iam.get_role_policy(RoleName=role, PolicyName=n)["PolicyDocument"] for n in names]
            granted = {
                a
                for d in deployed
                for s in d["Statement"]
                for a in ([s["Action"]] if isinstance(s["Action"], str) else s["Action"])
            }
            if logical_id == "PrepareCycleFunction":
                # It only asks whether a cycle is running (and in which target) and takes the cycle lease.
                assert granted == {"states:ListExecutions", "states:DescribeExecution", "s3:PutObject", "s3:GetObject"}
            else:
                assert granted, logical_id
        # One assumed-role session per invocation, named after the function (as Lambda does).
        sessions = {role.session_name for role in sts_backends["123456789012"]["aws"].assumed_roles}
        assert "tagpatch-local-DiscoveryFunction" in sessions


def test_the_first_cycle_in_a_fresh_account_succeeds_and_writes_the_ledger() -> None:
    # On the previous main the ledger read was a GetObject on a missing key without s3:ListBucket: 403.
    with SimulatedAccount(REPO / "template.yaml") as account:
        account.seed([instance("web", "sun-0200")])
        first = run_ok(account)
        ledger = account.client("s3").get_object(Bucket=account.artifact_bucket, Key=LEDGER_KEY)
        # Each entry also names the cycle and action that made it (made_by).
        assert json.loads(ledger["Body"].read()) == [
            {
                "patch_group": "web",
                "operating_system": "AMAZON_LINUX_2023",
                "baseline_id": ledger_baseline(account),
                "made_by": {"action": "create", "run_id": first.execution_name},
            }
        ]
        assert run_ok(account).resource_write_calls == {}  # and a rerun writes nothing


def ledger_baseline(account: SimulatedAccount) -> str:
    mappings = account.client("ssm").describe_patch_groups()["Mappings"]
    return str(mappings[0]["BaselineIdentity"]["BaselineId"])


def test_a_denied_ledger_read_fails_the_cycle_instead_of_meaning_no_ledger() -> None:
    def without_listing(document: dict[str, Any]) -> None:
        policy = statements(document, "BaselineAssociationFunction")
        policy[:] = [s for s in policy if s["Sid"] != "FindRegistrationLedger"]

    with template_variant(without_listing) as path, SimulatedAccount(path) as account:
        account.seed([instance("web", "sun-0200")])
        result = account.run_cycle({})
        assert result.status == "FAILED"
        failure = failed_state(result)
        assert failure["error"]["Error"] == "AccessDenied"
        assert "ListObjectsV2" in failure["error"]["Cause"]
        # Nothing was registered on a guess that there was no ledger.
        assert account.client("ssm").describe_patch_groups()["Mappings"] == []


def test_a_call_the_policy_does_not_grant_fails_with_access_denied() -> None:
    def narrow(document: dict[str, Any]) -> None:
        # The windows' writes scoped to one window id only: creating targets in a new window is denied.
        for statement in statements(document, "ApplyWindowChangesFunction"):
            if statement["Sid"] == "ChangeOwnedWindows":
                statement["Resource"] = {
                    "Fn::Sub": "arn:${AWS::Partition}:ssm:${AWS::Region}:${AWS::AccountId}:maintenancewindow/mw-0"
                }

    with template_variant(narrow) as path, SimulatedAccount(path) as account:
        account.seed([instance("web", "sun-0200")])
        result = account.run_cycle({})
        causes = [
            json.dumps(event, default=str)
            for event in result.events
            if "AccessDeniedException" in json.dumps(event, default=str)
            and "RegisterTargetWithMaintenanceWindow" in json.dumps(event, default=str)
        ]
        assert causes, "RegisterTargetWithMaintenanceWindow was not denied"
        role = account.role_arn("ApplyWindowChangesFunction").rsplit("/", 1)[1]
        assert f"assumed-role/{role}/tagpatch-local-ApplyWindowChangesFunction" in causes[0]
        assert (
            account.client("ssm").describe_maintenance_window_targets(
                WindowId=account.client("ssm").describe_maintenance_windows()["WindowIdentities"][0]["WindowId"]
            )["Targets"]
            == []
        )


def instance_id(account: SimulatedAccount, name: str) -> str:
    reservations = account.client("ec2").describe_instances(Filters=[{"Name": "tag:Name", "Values": [name]}])
    return str(reservations["Reservations"][0]["Instances"][0]["InstanceId"])


def test_a_retag_updates_and_removes_window_targets_and_tasks_under_the_functions_role(tmp_path: Path) -> None:
    # The SAR authorises UpdateMaintenanceWindowTarget and DeregisterTargetFromMaintenanceWindow on the
    # window AND on windowtarget/<id>, the ...Task pair on windowtask/<id> too; neither of these is
    # taggable, so a grant on maintenancewindow/* under aws:ResourceTag could never allow them.
    policy = yaml.safe_load((REPO / "policy" / "patch-policy.yaml").read_text())
    with SimulatedAccount(REPO / "template.yaml") as account:
        account.seed(
            [
                instance("web", "sun-0200", name="a"),
                instance("db", "sun-0200", name="b"),
                # An inline schedule equal to scan-daily's lands in that window with a second task.
                instance("inline", "cron(0 6 ? * * *)", name="c"),
                instance("scan", "scan-daily", os="WINDOWS", name="d"),
            ]
        )
        policy["defaults"]["window"] = {"timezone": "UTC", "duration_hours": 2, "cutoff_hours": 1}
        account.use_policy(write_yaml(tmp_path / "first.yaml", policy))
        run_ok(account)
        ec2 = account.client("ec2")
        ec2.create_tags(Resources=[instance_id(account, "a")], Tags=[{"Key": "Patch Group", "Value": "web2"}])
        ec2.create_tags(
            Resources=[instance_id(account, "b")], Tags=[{"Key": "Maintenance Window", "Value": "tue-2330"}]
        )
        ec2.terminate_instances(InstanceIds=[instance_id(account, "c")])
        policy["defaults"]["task"]["max_concurrency"] = "20%"
        account.use_policy(write_yaml(tmp_path / "second.yaml", policy))
        second = run_ok(account)
        assert {
            "ssm:UpdateMaintenanceWindowTarget",
            "ssm:DeregisterTargetFromMaintenanceWindow",
            "ssm:UpdateMaintenanceWindowTask",
            "ssm:DeregisterTaskFromMaintenanceWindow",
        } <= set(second.calls_by_function["ApplyWindowChangesFunction"])


def write_yaml(path: Path, document: dict[str, Any]) -> Path:
    path.write_text(yaml.safe_dump(document))
    return path


SCAN_NAME = "tagpatch-patch-scan"
OPERATOR_SCAN = {
    "Name": "AWS-RunPatchBaseline",
    "Parameters": {"Operation": ["Scan"], "RebootOption": ["NoReboot"]},
    "Targets": [{"Key": "tag:Patch Group", "Values": ["web"]}],
    "ScheduleExpression": "rate(7 days)",
}


def associations(account: SimulatedAccount) -> dict[str, dict[str, Any]]:
    ssm = account.client("ssm")
    return {
        found["AssociationId"]: ssm.describe_association(AssociationId=found["AssociationId"])["AssociationDescription"]
        for found in ssm.list_associations()["Associations"]
    }


def scan_changes(account: SimulatedAccount, result: Any) -> list[tuple[str, str]]:
    from tagpatch_local.report import change_lines

    return [(line["action"], line["name"]) for line in change_lines(account, result) if line["kind"] == "scan"]


def test_the_patch_scan_is_planned_made_kept_and_removed_beside_an_operator_s_own_associations(
    tmp_path: Path,
) -> None:
    policy = yaml.safe_load((REPO / "policy" / "patch-policy.yaml").read_text())
    with SimulatedAccount(REPO / "template.yaml") as account:
        account.seed([instance("web", "sun-0200"), instance("db", "not-a-window")])
        ssm = account.client("ssm")
        # The operator's own associations: one even named like tagpatch's, but not tagged as its own.
        theirs = ssm.create_association(**OPERATOR_SCAN, AssociationName="ops-weekly-scan")["AssociationDescription"]
        impostor = ssm.create_association(**OPERATOR_SCAN, AssociationName=SCAN_NAME)["AssociationDescription"]
        before = {key: associations(account)[key] for key in (theirs["AssociationId"], impostor["AssociationId"])}

        plan = run_ok(account, {"mode": "plan"})
        assert scan_changes(account, plan) == [("create", SCAN_NAME)]
        assert plan.resource_write_calls == {}

        first = run_ok(account)
        assert first.resource_write_calls["ssm:CreateAssociation"] == 1
        (ours,) = set(associations(account)) - set(before)
        made = associations(account)[ours]
        assert made["Targets"] == [{"Key": "tag-key", "Values": ["Patch Group", "PatchGroup"]}]
        assert made["Parameters"] == {"Operation": ["Scan"], "RebootOption": ["NoReboot"]}
        assert made["ScheduleExpression"] == "rate(1 day)"
        assert ssm.list_tags_for_resource(ResourceType="Association", ResourceId=ours)["TagList"] == [
            {"Key": "tagpatch:managed", "Value": "true"}
        ]

        rerun = run_ok(account)
        assert rerun.resource_write_calls == {}  # a rerun writes nothing
        assert scan_changes(account, rerun) == []

        policy["scan"]["schedule"] = "cron(0 4 ? * * *)"
        (tmp_path / "cron.yaml").write_text(yaml.safe_dump(policy))
        account.use_policy(tmp_path / "cron.yaml")
        assert scan_changes(account, run_ok(account)) == [("update", SCAN_NAME)]
        assert associations(account)[ours]["ScheduleExpression"] == "cron(0 4 ? * * *)"

        policy["scan"]["enabled"] = False
        (tmp_path / "off.yaml").write_text(yaml.safe_dump(policy))
        account.use_policy(tmp_path / "off.yaml")
        assert scan_changes(account, run_ok(account)) == [("delete", SCAN_NAME)]
        remaining = associations(account)
        assert ours not in remaining
        # Nothing tagpatch does not own was touched, whatever its name.
        assert {key: remaining[key] for key in before} == before


def test_the_function_s_role_cannot_change_an_association_it_does_not_own() -> None:
    with SimulatedAccount(REPO / "template.yaml") as account:
        account.seed([instance("web", "sun-0200")])
        run_ok(account)
        theirs = account.client("ssm").create_association(**OPERATOR_SCAN, AssociationName=SCAN_NAME)
        role = account.role_arn("BaselineAssociationFunction")
        keys = account.client("sts").assume_role(RoleArn=role, RoleSessionName="probe")["Credentials"]
        as_function = boto3.client(
            "ssm",
            region_name=account.region,
            aws_access_key_id=keys["AccessKeyId"],
            aws_secret_access_key=keys["SecretAccessKey"],
            aws_session_token=keys["SessionToken"],
        )
        for call in (as_function.delete_association, as_function.describe_association):
            with pytest.raises(ClientError) as denied:
                call(AssociationId=theirs["AssociationDescription"]["AssociationId"])
            assert denied.value.response["Error"]["Code"] == "AccessDeniedException"
        assert theirs["AssociationDescription"]["AssociationId"] in associations(account)


@pytest.mark.parametrize(
    ("sid", "denied"), [("AlertShortfalls", "sns:Publish"), ("EncryptForAlertsTopic", "kms:GenerateDataKey")]
)
def test_window_upsert_alerts_on_a_blocked_window_only_with_its_publish_and_key_grants(sid: str, denied: str) -> None:
    def without(document: dict[str, Any]) -> None:
        function_statements = statements(document, "WindowUpsertFunction")
        function_statements[:] = [statement for statement in function_statements if statement["Sid"] != sid]

    with template_variant(without) as path, SimulatedAccount(path) as account:
        account.client("ssm").create_maintenance_window(
            Name="tagpatch-sun-0200",
            Schedule="cron(0 2 ? * SUN *)",
            Duration=2,
            Cutoff=1,
            AllowUnassociatedTargets=True,
        )
        account.seed([instance("web", "sun-0200")])
        result = account.run_cycle({})
        assert result.status == "FAILED"
        failure = failed_state(result)
        cause = json.dumps(failure["error"])
        assert failure["failed_state"] == "WindowUpsert"
        assert denied in cause and "tagpatch-local-WindowUpsertFunctionRole" in cause, cause
