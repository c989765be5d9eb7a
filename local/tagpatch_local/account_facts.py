"""Facts about the simulated account that the runner's modules share: its identity, moto's setup, what a write is."""

from __future__ import annotations

from typing import Any, Final

ACCOUNT_ID: Final = "123456789012"
DEFAULT_REGION: Final = "us-east-1"
MOTO_CONFIG: Final[Any] = {"stepfunctions": {"execute_state_machine": True}, "lambda": {"use_docker": False}}
READ_PREFIXES: Final = ("Describe", "Get", "List", "Head", "Lookup", "Search")
# Writes that are the cycle's own output rather than changes to the account's patching setup
# (s3:DeleteObject: only the cycle lease, released at the end of every cycle).
# The Glue partition writes register (or drop) the export's own files in the compliance tables, one
# per target and day like the snapshot object: the export's output, not the patching setup.
ARTIFACT_WRITES: Final = frozenset(
    {
        "s3:PutObject",
        "s3:DeleteObject",
        "sns:Publish",
        "sns:PublishBatch",
        "glue:BatchCreatePartition",
        "glue:BatchDeletePartition",
    }
)
# Calls that are not reads by name yet change nothing in the account: AssumeRole hands out temporary
# credentials (a step acting in a member account assumes its spoke role).
CREDENTIAL_CALLS: Final = frozenset({"sts:AssumeRole"})
# Local runs have no X-Ray daemon; everything else about the environment is the template's.
LOCAL_ENVIRONMENT: Final = {"POWERTOOLS_TRACE_DISABLED": "true"}
# The runner's own credentials: the account's root, which the simulated IAM does not restrict.
ROOT_CREDENTIALS: Final = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}


def is_write(call: str) -> bool:
    operation = call.split(":", 1)[1]
    return call not in CREDENTIAL_CALLS and not operation.startswith(READ_PREFIXES)
