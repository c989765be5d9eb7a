"""What a run does to the simulated account: seed its fleet, move its clock, edit patch behaviour and
policy files, and read the notifications it sent."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from moto.ssm.models import ssm_backends

from tagpatch_local import simulator
from tagpatch_local.account_facts import ACCOUNT_ID
from tagpatch_local.deploy import TemplateDeployment
from tagpatch_local.fleet import FleetInstance, MemberAccount, seed_fleet
from tagpatch_local.housekeeping import settle_long_lived_objects
from tagpatch_local.organization import SeededOrganization, SpokeStackSet, seed_organization
from tagpatch_local.template import TemplateError


@dataclass(frozen=True)
class WindowRunSummary:
    """A maintenance window run the simulated account made while its clock advanced."""

    window_id: str
    window_name: str
    started: datetime
    status: str  # as SSM shows it when the advance ends: IN_PROGRESS for a run still going
    account_id: str = ACCOUNT_ID  # where the window is: the hub, or a member account of the organization
    region: str = ""


class WorldControls(TemplateDeployment):
    """Fleet, clock and notifications of the simulated account (SimulatedAccount mixes it in)."""

    _owner_queues: dict[str, str]
    _member_places: list[tuple[str, str]]  # (account, Region) of every seeded member: the clock moves there too

    # -- the fleet and the clock --
    def seed(self, instances: Sequence[FleetInstance]) -> list[str]:
        ids = seed_fleet(instances, region=self.region)
        self.config_observe()
        self.subscribe_owner_queues()
        settle_long_lived_objects()
        return ids

    def seed_accounts(self, accounts: Sequence[MemberAccount]) -> SeededOrganization:
        """Make the hub the management account of an organization holding `accounts`, each seeded with
        its instances in each of its Regions (a fleet file's `accounts:`), and the spoke (spoke/template.yaml
        beside the hub's template) deployed in each Region of the members that take it, trusting this stack."""
        spoke = None
        if any(account.spoke for account in accounts):
            path = self.template.root / "spoke" / "template.yaml"
            if not path.is_file():
                raise TemplateError(f"{path}: no spoke template beside the hub's, for the accounts with `spoke: true`")
            spoke = SpokeStackSet(path, {"HubAccountId": self.account_id, "HubStackName": self.stack_name})
        seeded = seed_organization(self.client("organizations"), accounts, self.signing_keys, spoke)
        self._member_places.extend((account.id, region) for account in accounts for region in account.regions)
        fixed = simulator.clock.clock(ACCOUNT_ID, self.region).fixed
        if fixed is not None:
            self.set_clock(fixed)  # one organization, one time: the members' clocks join the hub's
        settle_long_lived_objects()
        return seeded

    def _places(self) -> list[tuple[str, str]]:
        """Every (account, Region) the simulated organization holds: the hub's home first."""
        return [(ACCOUNT_ID, self.region), *self._member_places]

    def config_observe(self) -> int:
        """Let AWS Config notice what changed (and run its periodic rules that fall due) at the clock's time.

        The recorder sees changes within minutes in AWS; here, when this is called: after seeding, each
        scenario edit, a clock advance and before each cycle. Returns the configuration items recorded.
        """
        return simulator.config.observe(ACCOUNT_ID, self.region)

    def now(self) -> datetime:
        """The simulated account's clock."""
        return simulator.clock.now(ACCOUNT_ID, self.region)

    def set_clock(self, moment: datetime) -> None:
        """Fix the clock (it then moves only when advanced) in every account and Region of the
        organization; cycles take their time from it."""
        for account_id, region in self._places():
            simulator.clock.set_now(account_id, region, moment)

    def advance(self, delta: timedelta) -> list[WindowRunSummary]:
        """Move the clock forward, running every maintenance window run that falls due, in time order,
        in each account and Region (their windows do not interact, so one place after another)."""
        if simulator.clock.clock(ACCOUNT_ID, self.region).fixed is None:
            self.set_clock(self.now().replace(microsecond=0))
        self.subscribe_owner_queues()
        until = self.now() + delta
        summaries = []
        for account_id, region in self._places():
            ran = simulator.executions.advance_clock(account_id, region, until)
            backend = ssm_backends[account_id][region]
            summaries += [
                WindowRunSummary(
                    window_id=run.window_id,
                    window_name=getattr(backend.windows.get(run.window_id), "name", run.window_id),
                    started=run.started,
                    status=run.status_at(until)[0],
                    account_id=account_id,
                    region=region,
                )
                for run in ran
            ]
        self.config_observe()
        return sorted(summaries, key=lambda summary: summary.started)

    def set_patch_behaviour(self, instance_id: str, fields: Mapping[str, Any]) -> None:
        """Change how AWS-RunPatchBaseline behaves on an instance (a scenario's `patch` edit)."""
        state = simulator.executions.run_state(ACCOUNT_ID, self.region)
        current = state.profiles.get(instance_id)
        if current is None:
            raise TemplateError(f"instance {instance_id} has no simulated patch behaviour; was it seeded?")
        profile_fields = dict(fields)
        if "backup" in profile_fields:  # the fleet file's `backup: failed | success`
            profile_fields["backup_fails"] = profile_fields.pop("backup") == "failed"
        simulator.executions.set_patch_profile(ACCOUNT_ID, self.region, instance_id, replace(current, **profile_fields))

    def use_policy(self, path: Path) -> None:
        """Point every function that reads the patch policy at another file (a scenario's policy edit)."""
        if not path.is_file():
            raise TemplateError(f"policy file {path} does not exist")
        for function in self.dispatcher.functions.values():
            if "PATCH_POLICY_PATH" in function.environment:
                function.environment["PATCH_POLICY_PATH"] = str(path)
                function.module = None  # configuration is read at import, as on a cold start

    def use_exceptions(self, path: Path) -> None:
        """Point every function that reads the patch exceptions at another file (a scenario's edit)."""
        if not path.is_file():
            raise TemplateError(f"exceptions file {path} does not exist")
        for function in self.dispatcher.functions.values():
            if "PATCH_EXCEPTIONS_PATH" in function.environment:
                function.environment["PATCH_EXCEPTIONS_PATH"] = str(path)
                function.module = None  # configuration is read at import, as on a cold start

    def set_function_environment(self, logical_id: str, name: str, value: str) -> None:
        """Set one environment variable of one function, as an UpdateFunctionConfiguration would; its
        configuration is read again at import, as on the cold start that follows."""
        (function,) = [f for f in self.dispatcher.functions.values() if f.spec.logical_id == logical_id]
        function.environment[name] = value
        function.module = None

    # -- the notifications it sent --
    def _capture_notifications(self) -> None:
        """Subscribe a queue to the notifications topic, so a run can show every message it got but reminders."""
        sqs = self.client("sqs")
        self._notifications_queue = sqs.create_queue(QueueName="tagpatch-local-notifications-capture")["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=self._notifications_queue, AttributeNames=["QueueArn"])
        # Pre-patch reminders have their own files (notifications/<owner>.jsonl, reminders.jsonl).
        self.client("sns").subscribe(
            TopicArn=self.physical_id("NotificationsTopic"),
            Protocol="sqs",
            Endpoint=arn["Attributes"]["QueueArn"],
            Attributes={"FilterPolicy": json.dumps({"lead_hours": [{"exists": False}]})},
        )

    def drain_notifications(self) -> list[dict[str, Any]]:
        """The messages published to the notifications topic since the last drain (config_recorder only)."""
        url = getattr(self, "_notifications_queue", None)
        if url is None:
            return []
        sqs, found = self.client("sqs"), []
        while messages := sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", []):
            for message in messages:
                body = json.loads(message["Body"])
                attributes = {k: v.get("Value") for k, v in body.get("MessageAttributes", {}).items()}
                found.append({"subject": body.get("Subject"), "attributes": attributes, "message": body.get("Message")})
                sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
        return found

    def subscribe_owner_queues(self) -> list[str]:
        """One SQS queue per distinct Owner tag, subscribed to the notifications topic with a filter
        policy on `owner`, as a team would subscribe (docs/app-teams.md). Returns the owners newly subscribed."""
        queues = self._owner_queues
        owners = simulator.ec2.instance_tag_values(ACCOUNT_ID, self.region, "Owner")
        sqs, sns = self.client("sqs"), self.client("sns")
        added = []
        for owner in sorted(owners - set(queues)):
            label = re.sub(r"[^A-Za-z0-9_-]", "-", owner)[:50]
            url = sqs.create_queue(QueueName=f"tagpatch-local-owner-{label}-{len(queues)}")["QueueUrl"]
            arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
            sns.subscribe(
                TopicArn=self.physical_id("NotificationsTopic"),
                Protocol="sqs",
                Endpoint=arn,
                Attributes={"FilterPolicy": json.dumps({"owner": [owner]})},
            )
            queues[owner] = url
            added.append(owner)
        return added

    def drain_owner_notifications(self) -> dict[str, list[dict[str, Any]]]:
        """owner -> the messages its queue received since the last drain (structured JSON where sent)."""
        queues = self._owner_queues
        sqs, found = self.client("sqs"), {}
        for owner, url in sorted(queues.items()):
            received = []
            while messages := sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", []):
                for message in messages:
                    body = json.loads(message["Body"])
                    text = body.get("Message")
                    try:
                        parsed: Any = json.loads(text) if isinstance(text, str) else text
                    except ValueError:
                        parsed = text
                    attributes = {k: v.get("Value") for k, v in body.get("MessageAttributes", {}).items()}
                    received.append(
                        {
                            "read_at": self.now().isoformat().replace("+00:00", "Z"),
                            "subject": body.get("Subject"),
                            "attributes": attributes,
                            "message": parsed,
                        }
                    )
                    sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
            found[owner] = received
        return found
