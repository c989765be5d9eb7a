"""Limits the real service enforces, from the AWS General Reference (Systems Manager endpoints and
quotas, ssm.html) and the SSM API reference. Never imported from tagpatch: this is the judge.

Module-level names so that tests can lower a quota with monkeypatch.
"""

from __future__ import annotations

from typing import Final

# Per account and Region.
MAX_MAINTENANCE_WINDOWS = 50
MAX_TARGETS_PER_WINDOW = 100
MAX_TASKS_PER_WINDOW = 20
MAX_PATCH_BASELINES = 50
MAX_PATCH_GROUPS_PER_BASELINE = 25
# AssociationLimitExceeded and AssociationVersionLimitExceeded in the SSM API reference.
MAX_ASSOCIATIONS = 2_000
MAX_ASSOCIATION_VERSIONS = 1_000

# MaxResults bounds, from the operations' input shapes.
WINDOW_PAGE_BOUNDS: Final = (10, 100)  # Describe{MaintenanceWindows,...Targets,...Tasks}
BASELINE_PAGE_BOUNDS: Final = (1, 100)  # DescribePatchBaselines, DescribePatchGroups
ASSOCIATION_PAGE_BOUNDS: Final = (1, 50)  # ListAssociations

DEFAULT_OPERATING_SYSTEM: Final = "WINDOWS"  # what SSM assumes when OperatingSystem is omitted
