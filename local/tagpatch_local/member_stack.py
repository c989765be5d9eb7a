"""A CloudFormation template deployed into a member account and Region, as a service-managed StackSet
creates each of its stack instances (the spoke, spoke/template.yaml).

Each stack instance is created with the member's pseudo-parameters (AWS::AccountId, AWS::Region) and the
StackSet's parameters, every resource through boto3 in that account (the runner's root there,
`clients.account_session`), by the same resource creators as the hub's stack. As CloudFormation does, a
stack whose creation fails is rolled back: what it created is deleted, and the failure is reported as a
failed stack instance (`StackInstanceFailed`), while the StackSet's other instances stand.

Where CloudFormation would fail, so does this: IAM names are global to an account, so a template with
fixed RoleNames deployed to a second Region of one account fails there ("already exists").
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar

from botocore.exceptions import ClientError

from tagpatch_local.clients import account_session
from tagpatch_local.deploy import TemplateDeployment
from tagpatch_local.template import Template, TemplateError


class StackInstanceFailed(RuntimeError):
    """A stack instance's creation failed and was rolled back: the message names the account, Region and why."""


class MemberStack(TemplateDeployment):
    """One stack instance: `template_path` in `account_id` and `region` with `parameters`."""

    # What a rollback deletes, per resource type the member stacks hold (others cannot be rolled back).
    _DELETERS: ClassVar[Mapping[str, str]] = {
        "AWS::IAM::Role": "_delete_iam_role",
        "AWS::SSM::Document": "_delete_ssm_document",
        "AWS::SSM::PatchBaseline": "_delete_patch_baseline",
    }

    def __init__(
        self,
        template_path: Path,
        account_id: str,
        region: str,
        parameters: Mapping[str, str],
        signing_keys: Mapping[str, str],
        stack_name: str = "tagpatch-spoke",
    ) -> None:
        self.template = Template.load(template_path)
        self.account_id = account_id
        self.region = region
        self.stack_name = stack_name
        self.parameters = _checked_parameters(self.template, template_path, parameters)
        self.physical: dict[tuple[str, str | None], str] = {}
        self._session = account_session(account_id, region, signing_keys)

    def client(self, service: str) -> Any:
        clients: dict[str, Any] = self.__dict__.setdefault("_clients", {})
        if service not in clients:
            clients[service] = self._session.client(service)
        return clients[service]

    def deploy(self) -> dict[str, str]:
        """Create every resource whose Condition holds, then answer the stack's Outputs; on a failure,
        delete what was created and raise StackInstanceFailed."""
        unsupported = sorted(
            {self.template.resource_type(logical_id) for logical_id in self.template.resources} - set(self._DELETERS)
        )
        if unsupported:
            raise TemplateError(
                f"a member stack cannot roll back {', '.join(unsupported)}; the runner deploys only "
                f"{', '.join(sorted(self._DELETERS))} there"
            )
        try:
            for logical_id in self.template.resources:
                if self.enabled(logical_id):
                    self._resolve(logical_id, None)
        except ClientError as error:
            self._roll_back()
            raise StackInstanceFailed(
                f"stack instance {self.account_id}/{self.region} failed and rolled back: {_why(error)}"
            ) from error
        outputs = self.template.document.get("Outputs", {})
        return {
            name: str(self._resolved(output["Value"]))
            for name, output in outputs.items()
            if "Condition" not in output or self._condition({"Condition": output["Condition"]})
        }

    def _resolved(self, value: Any) -> Any:
        from tagpatch_local.template import resolve  # noqa: PLC0415

        return resolve(value, self._resolve)

    def _roll_back(self) -> None:
        created = [logical_id for logical_id, attribute in self.physical if attribute is None]
        for logical_id in reversed(created):
            getattr(self, self._DELETERS[self.template.resource_type(logical_id)])(self.physical[(logical_id, None)])
        self.physical.clear()

    def _delete_iam_role(self, role_name: str) -> None:
        iam = self.client("iam")
        for policy in iam.list_role_policies(RoleName=role_name)["PolicyNames"]:
            iam.delete_role_policy(RoleName=role_name, PolicyName=policy)
        iam.delete_role(RoleName=role_name)

    def _delete_ssm_document(self, name: str) -> None:
        self.client("ssm").delete_document(Name=name)

    def _delete_patch_baseline(self, baseline_id: str) -> None:
        self.client("ssm").delete_patch_baseline(BaselineId=baseline_id)


def _why(error: ClientError) -> str:
    detail = error.response.get("Error", {})
    return f"{detail.get('Code')}: {detail.get('Message')}"


def _checked_parameters(template: Template, path: Path, given: Mapping[str, str]) -> dict[str, str]:
    """The stack's parameters as CloudFormation checks them: every one without a Default given, each
    matching its AllowedPattern, none the template does not declare."""
    declared: Mapping[str, Any] = template.document.get("Parameters", {})
    unknown = sorted(set(given) - set(declared))
    if unknown:
        raise TemplateError(f"{path}: declares no parameter {', '.join(unknown)}")
    values: dict[str, str] = {}
    for name, spec in declared.items():
        if name not in given and "Default" not in spec:
            raise TemplateError(f"{path}: parameter {name} has no Default and was not given")
        value = str(given.get(name, spec.get("Default", "")))
        pattern = spec.get("AllowedPattern")
        if pattern is not None and re.fullmatch(str(pattern), value) is None:
            raise TemplateError(f"{path}: parameter {name}={value!r} does not match its AllowedPattern {pattern}")
        values[name] = value
    return values
