"""The simulated account's extensions to moto: one module per service or concern.

- `core`: the operation registry (`@operation`, `@correction`, `install()`), output validation
  against botocore's shapes, and SSM request helpers.
- `quotas`: the documented limits. `schedules`: what SSM accepts as a window schedule.
- `instances`: managed nodes and DescribeInstanceInformation. `windows`: maintenance windows,
  targets and tasks. `associations`: State Manager associations, run on their schedule like windows.
  `baselines`: patch baselines and patch groups. `ec2`, `serialization`: moto
  speed-ups that answer exactly as moto does.
- `iam`: IAM enforced for assumed-role credentials (action, resource ARN, conditions).
- `assume_role`: STS AssumeRole judged on the caller's policies and the role's trust policy, across
  the organization's accounts. `organizations`: member accounts with the ids a fleet names, and the
  ARNs Organizations' requests are authorised on.
- `resource_policies`: topic, key, bucket and queue policies, for roles and for service principals.
- `scheduler`: EventBridge Scheduler's validation moto lacks, and one-time schedules that fire as
  the clock advances (SNS Publish through the universal target, with the schedule's role).
- `sns`: filter policies on String and String.Array attributes, and MessageStructure json, as SNS
  documents them. `sqs`: a queue's message counts against one reading of the clock (speed).
- `cloudwatch`: alarms that run their SNS actions as `cloudwatch.amazonaws.com`, and their history;
  dashboards global to the account.
- `config`: AWS Config's recorder of EC2 instances, rule evaluation and compliance queries.
- `glue`: a partition's values checked against its table's keys, and GetPartitions paged.
- `quicksight`: datasets and dashboards kept whole (DescribeDataSet, DescribeDashboardDefinition), and a
  dashboard whose datasets do not exist created as failed, as QuickSight reports it.
- `payload_limit`: Step Functions' 256 KiB on a state's data and an execution's input, failing with
  `States.DataLimitExceeded`, which `States.ALL` does not catch.
- `terminal_errors`: `States.Runtime`, which no Retry or Catch takes, and `States.DataLimitExceeded`,
  which `States.ALL` does not; an iteration's error reaches its Map under its own name.
- `throttling`: token buckets at the request rates AWS documents (off unless a runner turns it on).

Simulated state lives on moto's backends, so it is reset whenever moto resets them (each `mock_aws`
start). Nothing here imports tagpatch: the simulator's rules come from AWS's documentation, so that a
bug in tagpatch is never copied into its judge.
"""

from __future__ import annotations

from tagpatch_local.simulator import (
    associations,
    assume_role,
    automation,
    baselines,
    clock,
    cloudwatch,
    config,
    core,
    data_sync,
    ec2,
    events,
    executions,
    glue,
    iam,
    occurrences,
    organizations,
    payload_limit,
    quicksight,
    quotas,
    resource_policies,
    scheduler,
    schedules,
    serialization,
    sns,
    sqs,
    stepfunctions,
    targets,
    terminal_errors,
    throttling,
    window_schedule,
    windows,
)
from tagpatch_local.simulator.core import (
    FakeOutputError,
    MotoImplementsOperationError,
    MotoLacksOperationError,
    SimulatorError,
    corrected_operations,
    correction,
    install,
    installed_operations,
    operation,
    validate_output,
)
from tagpatch_local.simulator.instances import (
    PingStatus,
    PlatformType,
    deregister_managed_instance,
    managed_instances,
    register_managed_instance,
    set_ping_status,
    simulator_state,
)

__all__ = [
    "FakeOutputError",
    "MotoImplementsOperationError",
    "MotoLacksOperationError",
    "PingStatus",
    "PlatformType",
    "SimulatorError",
    "associations",
    "assume_role",
    "automation",
    "baselines",
    "clock",
    "cloudwatch",
    "config",
    "core",
    "corrected_operations",
    "correction",
    "data_sync",
    "deregister_managed_instance",
    "ec2",
    "events",
    "executions",
    "glue",
    "iam",
    "install",
    "installed_operations",
    "managed_instances",
    "occurrences",
    "operation",
    "organizations",
    "payload_limit",
    "quicksight",
    "quotas",
    "register_managed_instance",
    "resource_policies",
    "scheduler",
    "schedules",
    "serialization",
    "set_ping_status",
    "simulator_state",
    "sns",
    "sqs",
    "stepfunctions",
    "targets",
    "terminal_errors",
    "throttling",
    "validate_output",
    "window_schedule",
    "windows",
]
