"""The patch tasks' hook documents: each one the policy names must exist as a Command document before
WindowUpsert plans a task that runs it (AWS-RunPatchBaselineWithHooks would otherwise accept the task
and fail on every instance when the window runs)."""

from __future__ import annotations

from botocore.exceptions import ClientError

from tagpatch.aws import client, error_code
from tagpatch.errors import InvalidPatchPolicy
from tagpatch.policy import PatchPolicy

COMMAND: str = "Command"  # AWS-RunPatchBaselineWithHooks runs its hooks as Command documents


def check_hook_documents(policy: PatchPolicy) -> int:
    """Raise InvalidPatchPolicy, naming the key, for a hook document that is missing or not a Command
    document; returns how many were checked. Any other error (a denied read) is raised as it is."""
    documents = policy.hook_documents()
    for name, path in sorted(documents.items()):
        try:
            found = client("ssm").describe_document(Name=name)["Document"]
        except ClientError as error:
            if error_code(error) == "InvalidDocument":
                raise InvalidPatchPolicy(
                    f"{policy.source}: {path}: SSM document {name!r} does not exist in this account and Region "
                    "(DescribeDocument: InvalidDocument); create it, or correct the name"
                ) from error
            raise
        if found.get("DocumentType") != COMMAND:
            raise InvalidPatchPolicy(
                f"{policy.source}: {path}: SSM document {name!r} is a {found.get('DocumentType')} document; "
                "a hook must be a Command document"
            )
    return len(documents)
