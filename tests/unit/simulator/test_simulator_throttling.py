"""The simulator's token buckets: burst, refill and which bucket a request draws from (AWS's categories)."""

from __future__ import annotations

import pytest

from tagpatch_local.simulator import throttling
from tagpatch_local.simulator.throttling import Throttle, TokenBucket, classify, most_within


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def admitted(throttle: Throttle, count: int, service: str, operation: str, **kwargs: object) -> int:
    return sum(throttle.admit("111111111111", "us-east-1", service, operation, **kwargs) is None for _ in range(count))  # type: ignore[arg-type]


def test_a_full_bucket_takes_a_burst_of_its_capacity_then_refuses() -> None:
    clock = FakeClock()
    throttle = Throttle(clock=clock)
    # SSM RegisterTargetWithMaintenanceWindow: a write, bucket 50 refilled at 5 a second.
    assert admitted(throttle, 60, "ssm", "RegisterTargetWithMaintenanceWindow") == 50
    assert throttle.total_throttled() == 10


def test_an_empty_bucket_refills_at_its_rate_and_never_beyond_its_capacity() -> None:
    clock = FakeClock()
    throttle = Throttle(clock=clock)
    assert admitted(throttle, 50, "ssm", "RegisterTaskWithMaintenanceWindow") == 50
    clock.now += 1.0
    assert admitted(throttle, 10, "ssm", "RegisterTaskWithMaintenanceWindow") == 5
    clock.now += 0.1  # half a token: nothing
    assert admitted(throttle, 1, "ssm", "RegisterTaskWithMaintenanceWindow") == 0
    clock.now += 0.1
    assert admitted(throttle, 1, "ssm", "RegisterTaskWithMaintenanceWindow") == 1
    clock.now += 3600  # an hour idle refills to the capacity, no more
    assert admitted(throttle, 80, "ssm", "RegisterTaskWithMaintenanceWindow") == 50


def test_each_api_has_its_own_bucket_and_each_account_and_region_its_own_buckets() -> None:
    clock = FakeClock()
    throttle = Throttle(clock=clock)
    assert admitted(throttle, 55, "ssm", "RegisterTargetWithMaintenanceWindow") == 50
    assert admitted(throttle, 50, "ssm", "RegisterTaskWithMaintenanceWindow") == 50
    assert throttle.admit("222222222222", "us-east-1", "ssm", "RegisterTargetWithMaintenanceWindow") is None
    assert throttle.admit("111111111111", "eu-west-1", "ssm", "RegisterTargetWithMaintenanceWindow") is None


def test_a_refused_request_names_the_error_aws_answers_with() -> None:
    throttle = Throttle(clock=FakeClock())
    admitted(throttle, 50, "ec2", "CreateSnapshot")
    refused = throttle.admit("111111111111", "us-east-1", "ec2", "CreateSnapshot")
    assert refused is not None and (refused.code, refused.status) == ("RequestLimitExceeded", 503)
    admitted(throttle, 50, "ssm", "CreateMaintenanceWindow")
    refused = throttle.admit("111111111111", "us-east-1", "ssm", "CreateMaintenanceWindow")
    assert refused is not None and (refused.code, refused.status) == ("ThrottlingException", 400)


@pytest.mark.parametrize(
    ("service", "operation", "params", "expected"),
    [
        # EC2's table: Describe* with a filter or pagination use the non-mutating bucket (100, 20) ...
        ("ec2", "DescribeInstances", {"Filter.1.Name": ["tag-key"]}, (100, 20)),
        ("ec2", "DescribeInstances", {"MaxResults": ["1000"]}, (100, 20)),
        ("ec2", "DescribeInstances", {"NextToken": ["r-1"]}, (100, 20)),
        # ... without either, the listed actions use the smaller one (50, 10); by id is not a filter.
        ("ec2", "DescribeInstances", {}, (50, 10)),
        ("ec2", "DescribeInstances", {"InstanceId.1": ["i-1"]}, (50, 10)),
        ("ec2", "DescribeVolumes", {}, (50, 10)),
        ("ec2", "DescribeTags", {}, (100, 20)),  # not in the unfiltered list
        ("ec2", "GetConsoleOutput", {}, (100, 20)),
        ("ec2", "StartInstances", {}, (50, 5)),
        ("ec2", "CreateTags", {}, (100, 10)),  # uncategorized: its own figures
        ("ssm", "DescribeInstanceInformation", {}, (100, 20)),
        ("ssm", "ListTagsForResource", {}, (100, 20)),
        ("ssm", "GetMaintenanceWindowTask", {}, (100, 20)),
        ("ssm", "RegisterPatchBaselineForPatchGroup", {}, (50, 5)),
        ("ssm", "GetParameters", {}, (40, 40)),
        ("scheduler", "CreateSchedule", {}, (1000, 1000)),
    ],
)
def test_requests_fall_into_the_documented_categories(
    service: str, operation: str, params: dict[str, list[str]], expected: tuple[int, int]
) -> None:
    found = classify(service, operation, "us-east-1", params=params, url="")
    assert found is not None
    _, rate = found
    assert (rate.capacity, rate.refill) == expected


def test_parameter_store_reads_share_one_bucket() -> None:
    throttle = Throttle(clock=FakeClock())
    assert admitted(throttle, 30, "ssm", "GetParameter") == 30
    assert admitted(throttle, 30, "ssm", "GetParameters") == 10


def test_s3_buckets_are_per_bucket_and_split_reads_from_writes() -> None:
    read = classify("s3", "GetObject", "us-east-1", params={}, url="https://art.s3.amazonaws.com/reports/a.json")
    write = classify("s3", "PutObject", "us-east-1", params={}, url="https://s3.amazonaws.com/art/reports/a.json")
    assert read is not None and write is not None
    assert read[0] == "s3:art GET/HEAD" and (read[1].capacity, read[1].code, read[1].status) == (5500, "SlowDown", 503)
    assert write[0] == "s3:art PUT/COPY/POST/DELETE" and write[1].capacity == 3500


def test_requests_with_no_documented_rate_are_not_throttled() -> None:
    assert classify("sns", "Publish", "us-east-1", params={}, url="") is None
    assert classify("sfn", "ListExecutions", "us-east-1", params={}, url="") is None
    assert throttling.scheduler_rate("af-south-1").capacity == 250


def test_the_busiest_second_is_counted_over_any_window_not_calendar_seconds() -> None:
    assert most_within([0.0, 0.5, 0.99, 1.0, 1.2, 1.4], 1.0) == 5  # 0.5 .. 1.4
    assert most_within([], 1.0) == 0


def test_recorded_acceptances_never_exceed_capacity_plus_refill_in_any_second() -> None:
    clock = FakeClock()
    throttle = Throttle(clock=clock)
    for _ in range(400):  # 4 s of requests every 10 ms
        throttle.admit("111111111111", "us-east-1", "ssm", "DescribeInstancePatchStates")
        clock.now += 0.01
    busiest = throttle.busiest_second()[("111111111111", "us-east-1", "ssm:DescribeInstancePatchStates")]
    assert 100 < busiest <= 120
    assert throttle.over_rate() == {}


def test_token_bucket_ignores_a_clock_that_reads_earlier() -> None:
    bucket = TokenBucket(capacity=2, refill=1, tokens=0, updated=10.0)
    assert not bucket.take(9.0)
    assert bucket.updated == 10.0
