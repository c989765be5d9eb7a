"""Request throttling at the rates AWS documents: one token bucket per account, Region and rate category.

Off unless a runner turns it on (`SimulatedAccount.throttle_at_documented_rates()`); then every request a
handler sends is first offered to its bucket, and a request that finds the bucket empty is answered
with the service's throttling error without being carried out, as AWS does. The rates and the way
actions fall into categories come from AWS's pages (cited per rate below and in docs/simulator.md),
never from tagpatch. Where AWS documents no rate, the rate chosen is marked `documented=False` and the
reason is given beside it.

Buckets refill continuously from a monotonic clock (wall time): a bucket of capacity C refilled at R
tokens a second accepts at most C + R requests in any one-second window, which is what
`over_rate` checks from the recorded acceptance times.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Final
from urllib.parse import parse_qs, urlsplit

EC2_THROTTLING_PAGE: Final = "https://docs.aws.amazon.com/ec2/latest/devguide/ec2-api-throttling.html"
SSM_QUOTAS_PAGE: Final = "https://docs.aws.amazon.com/general/latest/gr/ssm.html"
S3_PERFORMANCE_PAGE: Final = "https://docs.aws.amazon.com/AmazonS3/latest/userguide/optimizing-performance.html"
SCHEDULER_QUOTAS_PAGE: Final = "https://docs.aws.amazon.com/scheduler/latest/UserGuide/scheduler-quotas.html"


@dataclass(frozen=True)
class Rate:
    """A token bucket's size and refill rate (tokens a second), and the error a throttled request gets."""

    category: str
    capacity: float
    refill: float
    code: str
    status: int
    documented: bool
    source: str


# --- EC2: "Request token bucket sizes and refill rates" (EC2_THROTTLING_PAGE) --------------------------
# "each API is evaluated individually": one bucket per action, sized by the action's category.
EC2_NON_MUTATING: Final = Rate("ec2 non-mutating", 100, 20, "RequestLimitExceeded", 503, True, EC2_THROTTLING_PAGE)
EC2_UNFILTERED_UNPAGINATED: Final = Rate(
    "ec2 unfiltered and unpaginated non-mutating", 50, 10, "RequestLimitExceeded", 503, True, EC2_THROTTLING_PAGE
)
EC2_MUTATING: Final = Rate("ec2 mutating", 50, 5, "RequestLimitExceeded", 503, True, EC2_THROTTLING_PAGE)
EC2_TAGS: Final = Rate(
    "ec2 uncategorized (CreateTags, DeleteTags)", 100, 10, "RequestLimitExceeded", 503, True, EC2_THROTTLING_PAGE
)
# Actions that use the smaller bucket when sent with neither pagination nor a filter.
EC2_UNFILTERED_ACTIONS: Final = frozenset(
    {
        "DescribeInstances",
        "DescribeInstanceStatus",
        "DescribeNetworkInterfaces",
        "DescribeSecurityGroups",
        "DescribeSnapshots",
        "DescribeSpotInstanceRequests",
        "DescribeVolumes",
    }
)
EC2_NON_MUTATING_PREFIXES: Final = ("Describe", "List", "Search", "Get")

# --- Systems Manager (SSM_QUOTAS_PAGE) ------------------------------------------------------------------
# Parameter Store's default throughput, 40 transactions a second shared by GetParameter, GetParameters
# and GetParametersByPath, is the only request rate the quotas page gives for the APIs tagpatch could
# call. None is documented for the maintenance-window, patch-baseline, managed-node, compliance or
# tagging APIs. Chosen: SSM's actions are bucketed per action like EC2's, with EC2's non-mutating and
# mutating figures, the only per-action request rates AWS documents for a comparable regional control
# plane. Not known from AWS: whether SSM's real rates are higher or lower (see docs/simulator.md).
SSM_PARAMETER_STORE: Final = Rate(
    "ssm parameter store (shared)", 40, 40, "ThrottlingException", 400, True, SSM_QUOTAS_PAGE
)
SSM_PARAMETER_READS: Final = frozenset({"GetParameter", "GetParameters", "GetParametersByPath"})
SSM_READ: Final = Rate("ssm read (chosen)", 100, 20, "ThrottlingException", 400, False, SSM_QUOTAS_PAGE)
SSM_WRITE: Final = Rate("ssm write (chosen)", 50, 5, "ThrottlingException", 400, False, SSM_QUOTAS_PAGE)
SSM_READ_PREFIXES: Final = ("Describe", "Get", "List")

# --- S3 (S3_PERFORMANCE_PAGE) ---------------------------------------------------------------------------
# "at least 3,500 PUT/COPY/POST/DELETE or 5,500 GET/HEAD requests per second per partitioned prefix".
# S3 documents no burst, so a bucket holds one second's requests; the simulator treats a whole bucket as
# one prefix (the strict side: S3 may partition further). Listing is a GET on the bucket.
S3_WRITE: Final = Rate("s3 PUT/COPY/POST/DELETE per prefix", 3500, 3500, "SlowDown", 503, True, S3_PERFORMANCE_PAGE)
S3_READ: Final = Rate("s3 GET/HEAD per prefix", 5500, 5500, "SlowDown", 503, True, S3_PERFORMANCE_PAGE)
S3_READ_OPERATIONS: Final = frozenset({"GetObject", "HeadObject", "HeadBucket", "ListObjectsV2", "ListObjects"})
S3_WRITE_OPERATIONS: Final = frozenset(
    {"PutObject", "CopyObject", "DeleteObject", "DeleteObjects", "CreateMultipartUpload", "UploadPart"}
)

# --- EventBridge Scheduler (SCHEDULER_QUOTAS_PAGE) ------------------------------------------------------
# "CreateSchedule request rate" (likewise Delete/Get/UpdateSchedule): 1,000 a second in the Regions the
# page names, 250 in every other. One copy of the page says 5,000; the simulator takes the lower figure.
# No burst is documented: a bucket holds one second's requests.
SCHEDULER_PRIMARY_REGIONS: Final = frozenset(
    {
        "us-east-1",
        "us-east-2",
        "us-west-2",
        "ap-northeast-1",
        "ap-south-1",
        "ap-southeast-1",
        "ap-southeast-2",
        "eu-central-1",
        "eu-west-1",
        "eu-west-2",
        "sa-east-1",
    }
)
SCHEDULER_OPERATIONS: Final = frozenset({"CreateSchedule", "DeleteSchedule", "GetSchedule", "UpdateSchedule"})


def scheduler_rate(region: str) -> Rate:
    per_second = 1000 if region in SCHEDULER_PRIMARY_REGIONS else 250
    return Rate(
        "scheduler schedule requests", per_second, per_second, "ThrottlingException", 400, True, SCHEDULER_QUOTAS_PAGE
    )


def _is_filtered_or_paginated(params: Mapping[str, Sequence[str]]) -> bool:
    return any(name.startswith("Filter.") or name in {"MaxResults", "NextToken"} for name in params)


def classify(
    service: str, operation: str, region: str, *, params: Mapping[str, Sequence[str]], url: str
) -> tuple[str, Rate] | None:
    """The bucket a request draws from (its name within the account and Region) and its rate.

    None: the simulator models no rate for that request (see docs/simulator.md for which).
    `params` are the query-protocol parameters (EC2); `url` locates an S3 request's bucket.
    """
    if service == "ec2":
        return _ec2_bucket(operation, params)
    if service == "ssm":
        if operation in SSM_PARAMETER_READS:
            return "ssm:parameter-store", SSM_PARAMETER_STORE
        return f"ssm:{operation}", SSM_READ if operation.startswith(SSM_READ_PREFIXES) else SSM_WRITE
    if service == "s3":
        return _s3_bucket_rate(operation, s3_bucket(url))
    if service == "scheduler" and operation in SCHEDULER_OPERATIONS:
        return f"scheduler:{operation}", scheduler_rate(region)
    return None


def _ec2_bucket(operation: str, params: Mapping[str, Sequence[str]]) -> tuple[str, Rate]:
    if operation in {"CreateTags", "DeleteTags"}:
        return f"ec2:{operation}", EC2_TAGS
    if operation.startswith(EC2_NON_MUTATING_PREFIXES):
        if operation in EC2_UNFILTERED_ACTIONS and not _is_filtered_or_paginated(params):
            return f"ec2:{operation} unfiltered", EC2_UNFILTERED_UNPAGINATED
        return f"ec2:{operation}", EC2_NON_MUTATING
    return f"ec2:{operation}", EC2_MUTATING


def _s3_bucket_rate(operation: str, bucket: str) -> tuple[str, Rate] | None:
    if operation in S3_READ_OPERATIONS:
        return f"s3:{bucket} GET/HEAD", S3_READ
    if operation in S3_WRITE_OPERATIONS:
        return f"s3:{bucket} PUT/COPY/POST/DELETE", S3_WRITE
    return None


def s3_bucket(url: str) -> str:
    """The bucket an S3 request addresses, virtual-hosted (bucket.s3...) or path style (s3.../bucket)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if ".s3." in host or host.endswith(".s3.amazonaws.com"):
        return host.split(".s3", 1)[0]
    return parts.path.lstrip("/").split("/", 1)[0]


def query_parameters(body: bytes | str | None) -> dict[str, list[str]]:
    """The parameters of a query-protocol (EC2) request body."""
    if not body:
        return {}
    text = body.decode() if isinstance(body, bytes) else body
    return parse_qs(text, keep_blank_values=True)


@dataclass
class TokenBucket:
    capacity: float
    refill: float
    tokens: float
    updated: float

    def take(self, now: float) -> bool:
        self.tokens = min(self.capacity, self.tokens + max(0.0, now - self.updated) * self.refill)
        self.updated = max(self.updated, now)
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return True
        return False


@dataclass
class Throttle:
    """Token buckets per (account, Region, bucket name), with what each accepted and refused."""

    clock: Callable[[], float] = time.monotonic
    buckets: dict[tuple[str, str, str], TokenBucket] = field(default_factory=dict)
    rates: dict[tuple[str, str, str], Rate] = field(default_factory=dict)
    accepted: dict[tuple[str, str, str], list[float]] = field(default_factory=dict)
    throttled: Counter[tuple[str, str, str]] = field(default_factory=Counter)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def admit(
        self,
        account_id: str,
        region: str,
        service: str,
        operation: str,
        *,
        params: Mapping[str, Sequence[str]] | None = None,
        url: str = "",
    ) -> Rate | None:
        """None when the request may go ahead (or has no modelled rate); else the Rate that refused it."""
        found = classify(service, operation, region, params=params or {}, url=url)
        if found is None:
            return None
        name, rate = found
        key = (account_id, region, name)
        with self._lock:
            now = self.clock()
            bucket = self.buckets.get(key)
            if bucket is None:
                bucket = self.buckets[key] = TokenBucket(rate.capacity, rate.refill, rate.capacity, now)
                self.rates[key] = rate
            if bucket.take(now):
                self.accepted.setdefault(key, []).append(now)
                return None
            self.throttled[key] += 1
            return rate

    def total_throttled(self) -> int:
        with self._lock:
            return sum(self.throttled.values())

    def busiest_second(self) -> dict[tuple[str, str, str], int]:
        """Per bucket, the most requests it accepted within any one-second window."""
        with self._lock:
            return {key: most_within(times, 1.0) for key, times in self.accepted.items()}

    def over_rate(self) -> dict[tuple[str, str, str], tuple[int, float]]:
        """Buckets whose busiest second exceeded capacity + refill: (busiest, allowed). Empty when none did."""
        busiest = self.busiest_second()
        with self._lock:
            allowed = {key: self.rates[key].capacity + self.rates[key].refill for key in busiest}
        return {key: (count, allowed[key]) for key, count in busiest.items() if count > allowed[key]}


def most_within(times: Sequence[float], window: float) -> int:
    """The largest number of the (sorted) times that fall within any half-open interval [t, t + window)."""
    most = 0
    start = 0
    for end, moment in enumerate(times):
        while moment - times[start] >= window:
            start += 1
        most = max(most, end - start + 1)
    return most
