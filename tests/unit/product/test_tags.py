from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tagpatch.classes import CLASS_PRECEDENCE
from tagpatch.tags import (
    MAINTENANCE_WINDOW_KEY,
    PATCH_GROUP_KEYS,
    Classification,
    InstanceFacts,
    classify,
)

WINDOWS = frozenset({"sun-0200", "tue-2330", "wed-0100", "thu-0300", "fri-2200", "sat-0400", "mon-0000"})
GOOD_TAGS = {"Patch Group": "web-prod", "Maintenance Window": "sun-0200"}


def facts(tags: Mapping[str, Any] | None = None, **overrides: Any) -> InstanceFacts:
    values: dict[str, Any] = {
        "instance_id": "i-0123456789abcdef0",
        "tags": dict(GOOD_TAGS) if tags is None else tags,
        "state": "running",
        "ssm_registered": True,
        "ping_status": "Online",
        "has_instance_profile": True,
    }
    values.update(overrides)
    return InstanceFacts(**values)


def run(tags: Mapping[str, Any] | None = None, windows: Any = WINDOWS, **overrides: Any) -> Classification:
    return classify(facts(tags, **overrides), windows)


def joined(result: Classification) -> str:
    return "\n".join(result.reasons)


def test_constants() -> None:
    assert PATCH_GROUP_KEYS == ("Patch Group", "PatchGroup")
    assert MAINTENANCE_WINDOW_KEY == "Maintenance Window"
    assert CLASS_PRECEDENCE == ("missing_tags", "invalid_tags", "unmanaged", "stopped", "ready")


# --- ready -----------------------------------------------------------------------------------


def test_ready_with_policy_window() -> None:
    result = run()
    assert result == Classification(
        instance_class="ready",
        reasons=(),
        warnings=(),
        patch_group="web-prod",
        patch_group_key="Patch Group",
        maintenance_window="sun-0200",
        window_key="Maintenance Window",
        window_kind="policy_window",
        targeting_tags={"Patch Group": "web-prod", "Maintenance Window": "sun-0200"},
    )


def test_ready_with_schedule_and_metadata_friendly_keys() -> None:
    result = run({"PatchGroup": "db", "MaintenanceWindow": "cron(30 23 ? * TUE#1 *)"})
    assert result.instance_class == "ready"
    assert result.reasons == ()
    assert (result.patch_group, result.patch_group_key) == ("db", "PatchGroup")
    assert result.maintenance_window == "cron(30 23 ? * TUE#1 *)"
    assert (result.window_key, result.window_kind) == ("MaintenanceWindow", "schedule")


@pytest.mark.parametrize("key", ["Maintenance Window", "MaintenanceWindow"])
@pytest.mark.parametrize("value", [" cron(30 23 ? * TUE#1 *) ", "sun-0200 ", "\tsun-0200"])
def test_window_value_with_whitespace_is_invalid_and_shown(key: str, value: str) -> None:
    # SSM matches window tags exactly as written: a target for "sun-0200" never selects "sun-0200 ".
    result = run({"PatchGroup": "db", key: value})
    assert result.instance_class == "invalid_tags"
    assert json.dumps(value) in joined(result)
    assert "whitespace" in joined(result)
    assert result.targeting_tags == {"PatchGroup": "db", key: value}


@pytest.mark.parametrize("group", ["web", "Web Prod", "a:b/c=d+e-f@g_h.i", "Gruppe-Ä-β-東京", "٣٤", "x" * 256])
def test_valid_patch_group_names(group: str) -> None:
    assert run({"Patch Group": group, "Maintenance Window": "rate(7 days)"}).instance_class == "ready"


def test_registered_without_instance_profile_is_fine() -> None:
    # Default Host Management Configuration registers agents without an instance profile.
    assert run(has_instance_profile=False).instance_class == "ready"


# --- missing_tags ----------------------------------------------------------------------------


def test_no_tags_at_all() -> None:
    result = run({})
    assert result.instance_class == "missing_tags"
    assert 'no patch group tag: add a tag with key "Patch Group" or "PatchGroup"' in joined(result)
    assert 'no maintenance window tag: add a tag with key "Maintenance Window" or "MaintenanceWindow"' in joined(result)
    assert result.patch_group is None and result.maintenance_window is None and result.window_kind is None


def test_missing_window_only() -> None:
    result = run({"Patch Group": "web"})
    assert result.instance_class == "missing_tags"
    assert result.reasons == (result.reasons[0],)
    assert "no maintenance window tag" in result.reasons[0]
    assert (result.patch_group, result.patch_group_key) == ("web", "Patch Group")


@pytest.mark.parametrize("value", ["", "   ", "\t\n"])
def test_empty_values_count_as_missing(value: str) -> None:
    result = run({"Patch Group": value, "Maintenance Window": value})
    assert result.instance_class == "missing_tags"
    assert 'tag "Patch Group" is present but its value' in joined(result)
    assert 'tag "Maintenance Window" is present but its value' in joined(result)
    assert ("is empty" if value == "" else "contains only whitespace") in joined(result)


@pytest.mark.parametrize(
    "key",
    [
        "patch group",
        "Patch-Group",
        "patchgroup",
        "Patch_Group",
        "PATCH GROUP",
        " Patch Group ",
        "Patch Groups",
    ],
)
def test_near_miss_patch_group_keys_are_named(key: str) -> None:
    result = run({key: "web", "Maintenance Window": "sun-0200"})
    assert result.instance_class == "missing_tags"
    assert result.reasons == (
        f'tag "{key}" looks like the patch group tag but the key must be exactly "Patch Group" or '
        '"PatchGroup"; rename the key',
    )


@pytest.mark.parametrize(
    "key",
    ["Maintenance-Window", "maintenance window", "MaintWindow", "maintenance_window", "MAINTENANCEWINDOW"],
)
def test_near_miss_window_keys_are_named(key: str) -> None:
    result = run({"Patch Group": "web", key: "sun-0200"})
    assert result.instance_class == "missing_tags"
    assert f'tag "{key}" looks like the maintenance window tag but the key must be exactly' in joined(result)
    assert "rename the key" in joined(result)


def test_near_miss_next_to_real_key_is_a_warning() -> None:
    result = run({**GOOD_TAGS, "patch-group": "other"})
    assert result.instance_class == "ready"
    assert any('"patch-group" looks like a misspelt' in w for w in result.warnings)


# --- invalid_tags ----------------------------------------------------------------------------


def test_conflicting_patch_group_keys() -> None:
    result = run({"Patch Group": "web", "PatchGroup": "db", "Maintenance Window": "sun-0200"})
    assert result.instance_class == "invalid_tags"
    assert 'both "Patch Group" ("web") and "PatchGroup" ("db") are set, with different values' in joined(result)
    assert result.patch_group_key == "Patch Group"
    # What SSM will do: a target on either key still selects it.
    assert "a window target on either key still selects it" in joined(result)
    assert result.targeting_tags == {"Patch Group": "web", "PatchGroup": "db", "Maintenance Window": "sun-0200"}


def test_equal_patch_group_keys_warn() -> None:
    result = run({"Patch Group": "web", "PatchGroup": "web", "Maintenance Window": "sun-0200"})
    assert result.instance_class == "ready"
    (warning,) = result.warnings
    assert warning.startswith('both "Patch Group" and "PatchGroup" are set (both "web")')
    # Targets by each key both select it: say what that means.
    assert "twice" in warning


def test_empty_primary_key_falls_back_with_warning() -> None:
    result = run({"Patch Group": "", "PatchGroup": "web", "Maintenance Window": "sun-0200"})
    assert result.instance_class == "ready"
    assert (result.patch_group, result.patch_group_key) == ("web", "PatchGroup")
    assert any('"Patch Group" is empty and ignored' in w for w in result.warnings)


def test_conflicting_window_keys() -> None:
    result = run({"Patch Group": "web", "Maintenance Window": "sun-0200", "MaintenanceWindow": "tue-2330"})
    assert result.instance_class == "invalid_tags"
    assert 'both "Maintenance Window" ("sun-0200") and "MaintenanceWindow" ("tue-2330")' in joined(result)


def test_equal_window_keys_warn() -> None:
    result = run({"Patch Group": "web", "Maintenance Window": "sun-0200", "MaintenanceWindow": "sun-0200"})
    assert result.instance_class == "ready"
    assert any('both "Maintenance Window" and "MaintenanceWindow"' in w for w in result.warnings)


@pytest.mark.parametrize(
    ("group", "reason"),
    [
        ("web!", 'contains characters not allowed in a patch group name: "!" (U+0021)'),
        ("a\tb", '"\\t" (U+0009)'),
        ("web#1", '"#" (U+0023)'),
        ("x" * 257, "value is 257 characters long; patch group names are at most 256"),
        (" web", 'value " web" has leading or trailing whitespace'),
        ("web ", 'so it would not match "web": remove the whitespace'),
    ],
)
def test_invalid_patch_group_values(group: str, reason: str) -> None:
    result = run({"Patch Group": group, "Maintenance Window": "sun-0200"})
    assert result.instance_class == "invalid_tags"
    assert reason in joined(result)
    assert result.patch_group == group.strip()


def test_invalid_schedule_reason_is_passed_through() -> None:
    result = run({"Patch Group": "web", "Maintenance Window": "cron(0 2 * * SUN *)"})
    assert result.instance_class == "invalid_tags"
    assert result.reasons == (
        'Maintenance Window "cron(0 2 * * SUN *)" is not a valid schedule expression: cron expression needs '
        '"?" in either day-of-month or day-of-week (got "*" and "SUN"); e.g. cron(0 2 ? * SUN *)',
    )
    assert result.window_kind is None
    assert result.maintenance_window == "cron(0 2 * * SUN *)"


def test_unknown_policy_window_lists_five_known_names() -> None:
    result = run({"Patch Group": "web", "Maintenance Window": "sunday-02"})
    assert result.instance_class == "invalid_tags"
    assert result.reasons == (
        'Maintenance Window "sunday-02" is neither a valid schedule expression nor a window defined in the '
        "patch policy (known windows: fri-2200, mon-0000, sat-0400, sun-0200, thu-0300, ...)",
    )


def test_unknown_policy_window_suggests_case_fix() -> None:
    result = run({"Patch Group": "web", "Maintenance Window": "SUN-0200"})
    assert 'did you mean "sun-0200"? (window names are case-sensitive)' in joined(result)


def test_unknown_window_without_policy_windows() -> None:
    result = run({"Patch Group": "web", "Maintenance Window": "cron (0 2 ? * SUN *)"}, windows=[])
    assert "(the patch policy defines no windows)" in joined(result)
    assert "a schedule must start with cron(, rate( or at(" in joined(result)


def test_policy_windows_may_be_a_keys_view() -> None:
    result = classify(facts(), {"sun-0200": object()}.keys())
    assert result.window_kind == "policy_window"


# --- unmanaged -------------------------------------------------------------------------------


def test_not_registered_without_profile() -> None:
    result = run(ssm_registered=False, ping_status=None, has_instance_profile=False)
    assert result.instance_class == "unmanaged"
    assert "not registered with SSM" in joined(result)
    assert "no IAM instance profile is attached, so the SSM agent cannot register" in joined(result)


def test_not_registered_with_profile_points_at_agent_and_network() -> None:
    result = run(ssm_registered=False, ping_status=None)
    assert result.instance_class == "unmanaged"
    assert "SSM agent is installed and running" in joined(result)
    assert "ssm, ssmmessages and ec2messages endpoints" in joined(result)
    assert "no IAM instance profile" not in joined(result)


@pytest.mark.parametrize("ping", ["ConnectionLost", "Inactive", None])
def test_running_but_not_online(ping: str | None) -> None:
    result = run(ping_status=ping, has_instance_profile=False)
    assert result.instance_class == "unmanaged"
    assert f"SSM agent ping status is {ping or 'unknown'} (not Online) while the instance is running" in joined(result)
    assert "no IAM instance profile is attached" in joined(result)


# --- stopped ---------------------------------------------------------------------------------


@pytest.mark.parametrize("state", ["stopped", "stopping"])
@pytest.mark.parametrize("ping", ["ConnectionLost", "Online", "Inactive"])
def test_stopped_registered_instance_is_stopped_not_unmanaged(state: str, ping: str) -> None:
    result = run(state=state, ping_status=ping)
    assert result.instance_class == "stopped"
    assert len(result.reasons) == 1
    assert f"instance is {state}: it will miss its maintenance window unless started" in result.reasons[0]
    assert "does not count against MaxErrors" in result.reasons[0]


def test_shutting_down_is_stopped() -> None:
    result = run(state="shutting-down", ping_status="ConnectionLost")
    assert result.instance_class == "stopped"
    assert "it will not be patched" in joined(result)


def test_pending_is_ready_with_warning() -> None:
    result = run(state="pending", ping_status="ConnectionLost")
    assert result.instance_class == "ready"
    assert any("pending" in w for w in result.warnings)


# --- precedence ------------------------------------------------------------------------------


def test_every_problem_is_listed_and_the_worst_wins() -> None:
    result = run(
        {"Patch Group": "web!", "maintenance-window": "sun-0200"},
        state="stopped",
        ssm_registered=False,
        ping_status=None,
        has_instance_profile=False,
    )
    assert result.instance_class == "missing_tags"
    reasons = joined(result)
    assert 'tag "maintenance-window" looks like the maintenance window tag' in reasons  # missing_tags
    assert "not allowed in a patch group name" in reasons  # invalid_tags
    assert "not registered with SSM" in reasons  # unmanaged
    assert "instance is stopped" in reasons  # stopped
    # Reasons come most severe first.
    order = ["looks like the maintenance window", "not allowed", "not registered", "instance is stopped"]
    positions = [reasons.index(text) for text in order]
    assert positions == sorted(positions)


@pytest.mark.parametrize(
    ("tags", "overrides", "expected"),
    [
        (
            {"Patch Group": "web!", "Maintenance Window": "sun-0200"},
            {"ping_status": "ConnectionLost"},
            "invalid_tags",
        ),
        (GOOD_TAGS, {"ping_status": "ConnectionLost"}, "unmanaged"),
        (GOOD_TAGS, {"ssm_registered": False, "state": "stopped", "ping_status": None}, "unmanaged"),
        (GOOD_TAGS, {"state": "stopped", "ping_status": "ConnectionLost"}, "stopped"),
        ({"Patch Group": "web"}, {"ssm_registered": False, "ping_status": None}, "missing_tags"),
    ],
)
def test_precedence(tags: dict[str, str], overrides: dict[str, Any], expected: str) -> None:
    result = run(tags, **overrides)
    assert result.instance_class == expected
    assert len(result.reasons) >= 1


# --- totality --------------------------------------------------------------------------------

interesting_keys = st.sampled_from(
    [
        "Patch Group",
        "PatchGroup",
        "Maintenance Window",
        "MaintenanceWindow",
        "patch group",
        "Patch-Group",
        "maintenance_window",
        "MaintWindow",
        "",
    ]
)
interesting_values = st.one_of(
    st.text(),
    st.text(max_size=400),
    st.sampled_from(["sun-0200", "cron(0 2 ? * SUN *)", "rate(1 days)", "at(2020-07-07T15:55:00)", " web ", ""]),
    st.builds(lambda body: f"cron({body})", st.text()),
    st.none(),
    st.integers(),
)


any_facts = st.builds(
    InstanceFacts,
    instance_id=st.text(max_size=20),
    tags=st.dictionaries(st.one_of(interesting_keys, st.text()), interesting_values, max_size=8),
    state=st.one_of(st.sampled_from(["running", "stopped", "stopping", "pending", "shutting-down"]), st.text()),
    ssm_registered=st.booleans(),
    ping_status=st.one_of(st.none(), st.sampled_from(["Online", "ConnectionLost", "Inactive"]), st.text()),
    has_instance_profile=st.booleans(),
)
any_windows = st.one_of(
    st.frozensets(st.text(max_size=20), max_size=8),
    st.lists(st.text(max_size=20), max_size=8),
    st.sampled_from([WINDOWS, frozenset()]),
)


@given(any_facts, any_windows)
def test_classify_never_raises(instance: InstanceFacts, windows: Any) -> None:
    result = classify(instance, windows)
    assert result.instance_class in CLASS_PRECEDENCE
    assert (result.instance_class == "ready") == (result.reasons == ())
    assert all(isinstance(r, str) and r for r in (*result.reasons, *result.warnings))
    if result.window_kind == "policy_window":
        assert result.maintenance_window in windows
    if result.patch_group is not None:
        assert result.patch_group == result.patch_group.strip()
        assert result.patch_group_key in PATCH_GROUP_KEYS


@pytest.mark.parametrize("tags", [None, {None: None}, {"Patch Group": None, "Maintenance Window": 5}, 42])
def test_untyped_junk_does_not_raise(tags: Any) -> None:
    result = classify(
        InstanceFacts("i-1", tags, None, None, None, None),  # type: ignore[arg-type]
        None,  # type: ignore[arg-type]
    )
    assert result.instance_class == "missing_tags"


# --- a one-off at() window already past can never run (issue #21) -----------------------------------

NOW = datetime(2026, 11, 29, 6, tzinfo=UTC)


def test_a_one_off_window_already_past_is_a_tag_problem_not_ready() -> None:
    tags = {"Patch Group": "web", "Maintenance Window": "at(2026-11-28T02:00:00)"}
    result = classify(facts(tags), WINDOWS, now=NOW)
    assert result.instance_class == "invalid_tags"
    assert "this window can never run" in joined(result) and "2026-11-28T02:00:00" in joined(result)


def test_a_one_off_window_still_ahead_is_ready() -> None:
    tags = {"Patch Group": "web", "Maintenance Window": "at(2026-11-29T07:00:00)"}
    assert classify(facts(tags), WINDOWS, now=NOW).instance_class == "ready"


def test_a_one_off_window_is_read_in_the_windows_time_zone() -> None:
    # 02:00 in Los Angeles is 10:00 UTC: still ahead at 06:00 UTC.
    tags = {"Patch Group": "web", "Maintenance Window": "at(2026-11-29T02:00:00)"}
    assert classify(facts(tags), WINDOWS, now=NOW).instance_class == "invalid_tags"
    assert classify(facts(tags), WINDOWS, now=NOW, timezone="America/Los_Angeles").instance_class == "ready"
