"""Patch exceptions: parsing governance's file, matching instances, expiry, and the notices before it."""

from __future__ import annotations

import os
import re
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest

from tagpatch.cycle import Cycle
from tagpatch.desired import build_desired_state
from tagpatch.errors import InvalidPatchExceptions
from tagpatch.exceptions import ExceptionSet, due_notices, load_exceptions, parse_exceptions, prune_ledger
from tagpatch.inventory import InventoryRecord
from tagpatch.monitoring import InstanceRun, WindowRun, alerts_for, instance_results
from tagpatch.policy import load_policy
from tagpatch.validation import ValidationSummary, report_instance, validate_inventory

REPO = Path(__file__).resolve().parents[3]
POLICY = load_policy(REPO / "policy" / "patch-policy.yaml")
NOW = datetime(2026, 11, 29, 6, tzinfo=UTC)
GOOD = {"reason": "vendor appliance", "approved_by": "jane (governance)", "expires": "2026-12-20", "ticket": "CHG-1"}


def cycle(now: datetime = NOW) -> Cycle:
    return Cycle("run", "exec", now, "apply", None, "runs/run/")


def record(instance_id: str = "i-0123456789abcdef0", **tags: str) -> InventoryRecord:
    tags = {"Patch Group": "web", "Maintenance Window": "sun-0200", "Owner": "web-team", **tags}
    return {
        "instance_id": instance_id,
        "name": tags.get("Name"),
        "state": "running",
        "tags": tags,
        "platform_details": "Linux/UNIX",
        "instance_profile_arn": "arn:aws:iam::123456789012:instance-profile/ssm",
        "launch_time": None,
        "os": "AMAZON_LINUX_2023",
        "ssm": {
            "registered": True,
            "ping_status": "Online",
            "platform_type": "Linux",
            "platform_name": "Amazon Linux",
            "platform_version": "2023",
            "agent_version": "3.3",
        },
    }


def exceptions(*entries: dict[str, Any], now: datetime = NOW, **settings: Any) -> ExceptionSet:
    document: dict[str, Any] = {"version": 1, "exceptions": list(entries)}
    if settings:
        document["settings"] = settings
    return parse_exceptions(document, "patch-exceptions.yaml", now)


def test_the_repository_file_is_valid_before_deploy() -> None:
    found = load_exceptions(REPO / "policy" / "patch-exceptions.yaml", datetime.now(UTC), strict=True)
    assert found.errors == ()
    assert found.max_days == 90


@pytest.mark.parametrize(
    ("entry", "words"),
    [
        ({k: v for k, v in GOOD.items() if k != "expires"} | {"instance_id": "i-0123456789abcdef0"}, "expires is"),
        (GOOD | {"instance_id": "i-0123456789abcdef0", "expires": "2027-06-01"}, "more than 90 days"),
        (GOOD | {"instance_id": "i-0123456789abcdef0", "expires": "next week"}, "not an ISO date"),
        (GOOD | {"instance_id": "i-0123456789abcdef0", "until": "2026-12-01"}, "not both"),
        (GOOD | {"instance_id": "web-1"}, "is not an instance id"),
        (GOOD, "exactly one of"),
        (GOOD | {"name": "a", "patch_group": "web"}, "exactly one of"),
        ({k: v for k, v in GOOD.items() if k != "reason"} | {"name": "a"}, "reason must be"),
        (GOOD | {"name": "a", "approved_by": " "}, "approved_by must be"),
        (GOOD | {"tag": {"a": "1", "b": "2"}}, "one key: value"),
        (GOOD | {"name": "a", "colour": "red"}, "unknown key 'colour'"),
        (GOOD | {"name": "a", "hold": "yes please"}, "hold must be true or false"),
        (GOOD | {"name": "a", "hold": 1}, "hold must be true or false"),
        ("i-0123456789abcdef0", "must be a mapping"),
    ],
)
def test_a_bad_entry_is_dropped_with_a_specific_reason_and_the_others_kept(entry: Any, words: str) -> None:
    found = exceptions(entry, GOOD | {"name": "kept"})
    assert [e.selector for e in found.exceptions] == ["name=kept"]
    (error,) = found.errors
    assert error.startswith("patch-exceptions.yaml: exceptions[0]: ") and words in error


def test_until_is_the_same_as_expires_and_the_maximum_is_a_setting() -> None:
    entry = {k: v for k, v in GOOD.items() if k != "expires"} | {"name": "a", "until": "2027-02-01"}
    assert exceptions(entry).exceptions[0].expires == date(2027, 2, 1)
    assert "more than 30 days" in exceptions(entry, max_days=30).errors[0]


def test_a_broken_file_is_ignored_at_run_time_and_rejected_before_deploy(tmp_path: Path) -> None:
    path = tmp_path / "patch-exceptions.yaml"
    path.write_text("exceptions: {not: a list}\n")
    found = load_exceptions(path, NOW)
    assert found.exceptions == () and "exceptions must be a list" in found.errors[0]
    with pytest.raises(InvalidPatchExceptions, match="exceptions must be a list"):
        load_exceptions(path, NOW, strict=True)
    path.write_text(f"exceptions:\n  - name: a\n    reason: r\n    approved_by: b\n    expires: {date(2030, 1, 1)}\n")
    with pytest.raises(InvalidPatchExceptions, match="more than 90 days"):
        load_exceptions(path, NOW, strict=True)
    assert load_exceptions(tmp_path / "absent.yaml", NOW).exceptions == ()


@pytest.mark.parametrize(
    ("selector", "hits"),
    [
        ({"instance_id": "i-0123456789abcdef0"}, True),
        ({"instance_id": "i-0123456789abcdef1"}, False),
        ({"name": "billing-1"}, True),
        ({"name": "Billing-1"}, False),
        ({"patch_group": "web"}, True),
        ({"tag": {"Application": "billing"}}, True),
        ({"tag": {"Application": "billing "}}, False),
    ],
)
def test_selectors_match_exactly(selector: dict[str, Any], hits: bool) -> None:
    found = exceptions(GOOD | selector)
    line = report_instance(record(Name="billing-1", Application="billing"), POLICY, cycle(), found)
    assert (line["class"] == "excepted") is hits
    assert line["tag_class"] == "ready"


def test_a_live_exception_makes_the_instance_excepted_until_its_last_day_then_the_rules_apply() -> None:
    found = exceptions(GOOD | {"instance_id": "i-0123456789abcdef0"})
    untagged = record()
    del untagged["tags"]["Patch Group"]
    line = report_instance(untagged, POLICY, cycle(datetime(2026, 12, 20, 23, 59, tzinfo=UTC)), found)
    assert (line["class"], line["tag_class"]) == ("excepted", "missing_tags")
    assert line["exception"] == {
        "reason": "vendor appliance",
        "expires": "2026-12-20",
        "approved_by": "jane (governance)",
        "ticket": "CHG-1",
        "selector": "instance_id=i-0123456789abcdef0",
    }
    assert line["reasons"]  # what the tags lack is still said
    after = report_instance(untagged, POLICY, cycle(datetime(2026, 12, 21, tzinfo=UTC)), found)
    assert (after["class"], "exception" in after) == ("missing_tags", False)
    assert after["expired_exception"]["expires"] == "2026-12-20"


def test_the_summary_counts_excepted_instances_and_their_exception() -> None:
    found = exceptions(GOOD | {"name": "billing-1"})
    summary = ValidationSummary()
    lines = list(
        validate_inventory([record(Name="billing-1"), record("i-0123456789abcdef1")], POLICY, cycle(), summary, found)
    )
    assert summary.counts_by_class()["excepted"] == 1 and summary.counts_by_class()["ready"] == 1
    (problem,) = summary.problems_by_owner["web-team"]
    assert problem["class"] == "excepted" and problem["exception"]["reason"] == "vendor appliance"
    # The exception changes the report, not SSM: the window still serves the excepted instance.
    assert [w.name for w in build_desired_state(lines, POLICY).windows] == ["tagpatch-sun-0200"]


def _lines(now: datetime, found: ExceptionSet) -> list[Any]:
    return list(validate_inventory([record(Name="billing-1")], POLICY, cycle(now), ValidationSummary(), found))


def _run(status: str, operations: frozenset[str], operation: str, instance_status: str) -> WindowRun:
    """A run of tagpatch-sun-0200 that reached i-0123456789abcdef0 with `operation`."""
    instance = "i-0123456789abcdef0"
    return WindowRun(
        "tagpatch-sun-0200",
        "e" * 36,
        status,
        "",
        NOW,
        operations,
        {instance: (operation, InstanceRun(instance, instance_status, instance_status))},
    )


def test_monitoring_reports_an_excepted_failure_without_alerting() -> None:
    lines = _lines(NOW, exceptions(GOOD | {"name": "billing-1"}))
    run = _run("FAILED", frozenset({"Install"}), "Install", "Failed")
    expected = {("Patch Group", "web", "Maintenance Window", "sun-0200"): "tagpatch-sun-0200"}
    (result,) = instance_results(lines, expected, [run], {}, now=NOW)
    assert result["outcome"] == "excepted"
    assert "until 2026-12-20" in result["reason"] and "without it: failed" in result["reason"]
    assert result["exception"]["approved_by"] == "jane (governance)"
    assert alerts_for([result], "unowned") == []


def test_hold_is_false_unless_given_and_marks_the_line_held_while_live() -> None:
    assert exceptions(GOOD | {"name": "a"}).exceptions[0].hold is False
    found = exceptions(GOOD | {"instance_id": "i-0123456789abcdef0", "hold": True})
    assert found.errors == () and found.exceptions[0].hold is True
    line = report_instance(record(), POLICY, cycle(), found)
    assert line["held"] is True and line["exception"]["hold"] is True
    assert "held" not in report_instance(record(), POLICY, cycle(), exceptions(GOOD | {"name": "x"}))
    after = report_instance(record(), POLICY, cycle(datetime(2026, 12, 21, tzinfo=UTC)), found)
    assert "held" not in after and after["class"] == "ready"


def test_a_hold_entry_is_rejected_before_deploy_when_malformed(tmp_path: Path) -> None:
    path = tmp_path / "patch-exceptions.yaml"
    path.write_text(
        "exceptions:\n  - name: a\n    reason: r\n    approved_by: b\n    expires: 2026-12-01\n    hold: 'true'\n"
    )
    with pytest.raises(InvalidPatchExceptions, match="hold must be true or false"):
        load_exceptions(path, NOW, strict=True)
    assert load_exceptions(path, NOW).exceptions == ()  # at run time: dropped with its reason
    path.write_text(
        "exceptions:\n  - name: a\n    reason: r\n    approved_by: b\n    expires: 2026-12-01\n    hold: true\n"
    )
    assert load_exceptions(path, NOW, strict=True).exceptions[0].hold is True


def test_monitoring_reports_a_held_instance_scanned_by_id_as_excepted_and_held() -> None:
    lines = _lines(NOW, exceptions(GOOD | {"name": "billing-1", "hold": True}))
    run = _run("SUCCESS", frozenset({"Install", "Scan"}), "Scan", "Success")
    # As expected_windows keys an instance a hold's Scan task selects: by id, and held.
    expected = {
        ("InstanceIds", "i-0123456789abcdef0", "", ""): "tagpatch-sun-0200",
        ("Held", "i-0123456789abcdef0", "", ""): "tagpatch-sun-0200",
    }
    (result,) = instance_results(lines, expected, [run], {}, now=NOW)
    assert result["outcome"] == "excepted" and result["window"] == "tagpatch-sun-0200"
    assert "patching held back (scan only); scanned" in result["reason"]
    assert alerts_for([result], "unowned") == []
    # Selected by tag after all (the hold did not fit SSM's quotas): the reason says so.
    by_tag = {("Patch Group", "web", "Maintenance Window", "sun-0200"): "tagpatch-sun-0200"}
    (result,) = instance_results(lines, by_tag, [run], {}, now=NOW)
    assert "hold NOT applied" in result["reason"]


def test_notices_go_once_to_the_owner_and_governance_before_and_at_expiry() -> None:
    found = exceptions(GOOD | {"name": "billing-1"}, notice_days=[14, 3])
    sent: dict[str, str] = {}

    def due(day: int, month: int = 12) -> list[tuple[str, str, int]]:
        now = datetime(2026, month, day, 6, tzinfo=UTC)
        notices = due_notices(_lines(now, found), found.notice_days, "governance", "unowned", sent, now)
        sent.update({n.key: "x" for n in notices})
        return [(n.owner, n.kind, n.days_left) for n in notices]

    assert due(5) == []  # 15 days left
    assert due(6) == [("governance", "expiring", 14), ("web-team", "expiring", 14)]
    assert due(7) == []  # told once
    assert due(17) == [("governance", "expiring", 3), ("web-team", "expiring", 3)]
    assert due(20) == []  # the last day is still live and already told
    assert due(21) == [("governance", "expired", -1), ("web-team", "expired", -1)]
    assert due(22) == []
    assert len(prune_ledger(sent, datetime(2027, 6, 1, tzinfo=UTC))) == 0
    assert prune_ledger(sent, datetime(2026, 12, 22, tzinfo=UTC)) == sent


def test_a_notice_names_the_exception_and_its_instances() -> None:
    found = exceptions(GOOD | {"name": "billing-1"})
    now = datetime(2026, 12, 14, tzinfo=UTC)
    notice = due_notices(_lines(now, found), found.notice_days, "governance", "unowned", {}, now)[0]
    assert notice.subject() == "tagpatch: patch exception name=billing-1 expires in 6 days"
    assert "i-0123456789abcdef0 (billing-1)" in notice.body() and "CHG-1" in notice.body()


# --- reading the file as strictly as the runner's other input files (issue #21) --------------------

ENTRY = "  - name: {name}\n    reason: r\n    approved_by: b\n    expires: {expires}\n"


def exceptions_file(tmp_path: Path, body: str | bytes) -> Path:
    path = tmp_path / "patch-exceptions.yaml"
    if isinstance(body, bytes):
        path.write_bytes(body)
    else:
        path.write_text(body, encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("entry", "words"),
    [
        (  # PyYAML kept the last `name` without a word
            ENTRY.format(name="a", expires="2026-12-01") + "    name: b\n",
            "exceptions[1] (line 6): duplicate key 'name' on line 10",
        ),
        (ENTRY.format(name="a", expires="2026-02-30"), "exceptions[1] (line 6): expires '2026-02-30' is not"),
        (ENTRY.format(name="a", expires="2026-12-01T25:00"), "exceptions[1] (line 6): expires '2026-12-01T25:00'"),
        (ENTRY.format(name="a", expires="2026-12-01") + '    hold: "yes"\n', "exceptions[1] (line 6): hold must be"),
    ],
)
def test_a_bad_entry_is_dropped_with_its_line_and_the_others_kept(tmp_path: Path, entry: str, words: str) -> None:
    path = exceptions_file(tmp_path, "exceptions:\n" + ENTRY.format(name="kept", expires="2026-12-01") + entry)
    found = load_exceptions(path, NOW)  # at run time: never an exception out of here
    assert [e.selector for e in found.exceptions] == ["name=kept"]
    (error,) = found.errors
    assert words in error, error
    with pytest.raises(InvalidPatchExceptions, match=re.escape(words)):
        load_exceptions(path, NOW, strict=True)


@pytest.mark.parametrize(
    ("body", "words"),
    [
        (b"exceptions:\n  - name: caf\xe9\n", "line 2: byte 0xe9 is not UTF-8"),
        ("exceptions: []\nexceptions: []\n", "(line 2): duplicate key 'exceptions'"),
        ("exceptions: [\n", "not valid YAML: line 2"),
        ("x" * (2 * 1024 * 1024), "larger than"),
    ],
)
def test_an_unreadable_file_is_ignored_with_its_reason(tmp_path: Path, body: str | bytes, words: str) -> None:
    path = exceptions_file(tmp_path, body)
    found = load_exceptions(path, NOW)
    assert found.exceptions == ()
    (error,) = found.errors
    assert "ignored entirely" in error and words in error and "\n" not in error, error


def test_an_expiry_written_as_a_time_still_reads_as_its_day(tmp_path: Path) -> None:
    path = exceptions_file(tmp_path, "exceptions:\n" + ENTRY.format(name="a", expires="2026-12-01T10:00:00Z"))
    assert load_exceptions(path, NOW, strict=True).exceptions[0].expires == date(2026, 12, 1)


def test_a_named_pipe_is_never_opened(tmp_path: Path) -> None:
    path = tmp_path / "patch-exceptions.yaml"
    os.mkfifo(path)  # opening it to read would block until a writer came
    found = load_exceptions(path, NOW)
    assert found.exceptions == () and "not a regular file" in found.errors[0]


def test_tag_validation_judges_a_one_off_window_at_the_cycles_time() -> None:
    # Issue #21: a past at() window is its own tag problem at TagValidation, not ready.
    line = report_instance(record(**{"Maintenance Window": "at(2026-11-28T02:00:00)"}), POLICY, cycle(), None)
    assert line["class"] == "invalid_tags" and any("this window can never run" in r for r in line["reasons"])
    later = report_instance(record(**{"Maintenance Window": "at(2026-12-28T02:00:00)"}), POLICY, cycle(), None)
    assert later["class"] == "ready"


@pytest.mark.parametrize("document", [{"bad\nkey": 1}, {"exceptions": [], "settings": {"max\ndays": 3}}])
def test_an_unknown_key_with_a_control_character_is_named_quoted_on_one_line(document: dict[str, Any]) -> None:
    with pytest.raises(InvalidPatchExceptions) as raised:
        parse_exceptions(document, "exceptions.yaml", None)
    assert "\n" not in str(raised.value)
    assert "\\n" in str(raised.value)
