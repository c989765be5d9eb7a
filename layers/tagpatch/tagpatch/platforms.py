"""Operating systems as SSM names them, and how to recognise them from what SSM and EC2 report.

Patch baselines are per `OperatingSystem` (the PatchBaseline enum), so every instance is reduced to
one of those values. SSM's DescribeInstanceInformation gives PlatformName/PlatformVersion for managed
nodes; for unmanaged ones only EC2's coarse PlatformDetails is known.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final


@dataclass(frozen=True)
class Platform:
    """How one SSM OperatingSystem value shows up in DescribeInstanceInformation and EC2."""

    operating_system: str  # SSM OperatingSystem enum value, e.g. AMAZON_LINUX_2023
    platform_type: str  # SSM PlatformType: Linux | Windows | MacOS
    platform_name: str  # SSM PlatformName as the agent reports it
    platform_version: str  # a representative PlatformVersion
    ec2_platform_details: str  # EC2 PlatformDetails (billing product)


PLATFORMS: Final[tuple[Platform, ...]] = (
    Platform("AMAZON_LINUX_2023", "Linux", "Amazon Linux", "2023", "Linux/UNIX"),
    Platform("AMAZON_LINUX_2", "Linux", "Amazon Linux", "2", "Linux/UNIX"),
    Platform("UBUNTU", "Linux", "Ubuntu", "22.04", "Linux/UNIX"),
    Platform("REDHAT_ENTERPRISE_LINUX", "Linux", "Red Hat Enterprise Linux", "9.4", "Red Hat Enterprise Linux"),
    Platform("SUSE", "Linux", "SLES", "15.5", "SUSE Linux"),
    Platform("DEBIAN", "Linux", "Debian GNU/Linux", "12", "Linux/UNIX"),
    Platform("CENTOS", "Linux", "CentOS Linux", "7.9.2009", "Linux/UNIX"),
    Platform("ORACLE_LINUX", "Linux", "Oracle Linux Server", "8.9", "Linux/UNIX"),
    Platform("ROCKY_LINUX", "Linux", "Rocky Linux", "9.3", "Linux/UNIX"),
    Platform("ALMA_LINUX", "Linux", "AlmaLinux", "9.3", "Linux/UNIX"),
    Platform("WINDOWS", "Windows", "Microsoft Windows Server 2022 Datacenter", "10.0.20348", "Windows"),
    Platform("MACOS", "MacOS", "macOS", "14.4", "Linux/UNIX"),
)

BY_OPERATING_SYSTEM: Final[dict[str, Platform]] = {p.operating_system: p for p in PLATFORMS}
OPERATING_SYSTEMS: Final[frozenset[str]] = frozenset(BY_OPERATING_SYSTEM)

# Checked in order: the first prefix that matches PlatformName wins.
_NAME_PREFIXES: Final[tuple[tuple[str, str], ...]] = (
    ("Microsoft Windows", "WINDOWS"),
    ("Ubuntu", "UBUNTU"),
    ("Red Hat Enterprise Linux", "REDHAT_ENTERPRISE_LINUX"),
    ("SLES", "SUSE"),
    ("SUSE", "SUSE"),
    ("Debian", "DEBIAN"),
    ("CentOS", "CENTOS"),
    ("Oracle Linux", "ORACLE_LINUX"),
    ("Rocky Linux", "ROCKY_LINUX"),
    ("AlmaLinux", "ALMA_LINUX"),
    ("macOS", "MACOS"),
    ("Mac OS", "MACOS"),
)


def operating_system_from_ssm(
    platform_type: str | None, platform_name: str | None, platform_version: str | None
) -> str | None:
    """Map SSM's PlatformType/Name/Version to the OperatingSystem a patch baseline is keyed on."""
    name = (platform_name or "").strip()
    if name.startswith("Amazon Linux"):
        version = (platform_version or "").strip()
        if version.startswith("2023"):
            return "AMAZON_LINUX_2023"
        if version.startswith("2"):
            return "AMAZON_LINUX_2"
        return "AMAZON_LINUX"
    for prefix, operating_system in _NAME_PREFIXES:
        if name.startswith(prefix):
            return operating_system
    if platform_type == "Windows":
        return "WINDOWS"
    return None


def operating_system_from_ec2(platform: str | None, platform_details: str | None) -> str | None:
    """Best effort for instances SSM does not know: EC2 only tells Windows, RHEL and SUSE apart."""
    if platform == "windows" or (platform_details or "").startswith("Windows"):
        return "WINDOWS"
    details = platform_details or ""
    if details.startswith("Red Hat"):
        return "REDHAT_ENTERPRISE_LINUX"
    if details.startswith("SUSE"):
        return "SUSE"
    return None
