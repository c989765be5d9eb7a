"""The Config tag rule's pure parts: verdicts from TagValidation's classification, annotations, batches,
and which compliance changes the notifier tells."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tagpatch.config_rules import (
    ANNOTATION_LIMIT,
    Evaluation,
    batches,
    compliance_change,
    evaluate_instance,
    evaluate_item,
    evaluations_for_event,
    message_for,
    unrecorded_types,
)
from tagpatch.errors import InvalidConfigEvent
from tagpatch.exceptions import ExceptionSet, parse_exceptions

NOW = datetime(2026, 11, 29, 6, tzinfo=UTC)
WINDOWS = ("sun-0200",)
NONE = ExceptionSet()
GOOD = {"Patch Group": "web", "Maintenance Window": "sun-0200"}


@pytest.mark.parametrize(
    ("tags", "state", "compliance", "words"),
    [
        (GOOD, "running", "COMPLIANT", None),
        (GOOD, "stopped", "COMPLIANT", None),
        ({}, "running", "NON_COMPLIANT", 'no patch group tag: add a tag with key "Patch Group"'),
        ({**GOOD, "Maintenance Window": "someday"}, "running", "NON_COMPLIANT", "neither a valid schedule"),
        ({**GOOD, "Patch Group": "web "}, "running", "NON_COMPLIANT", "leading or trailing whitespace"),
        ({}, "terminated", "NOT_APPLICABLE", None),
        ({}, "shutting-down", "NOT_APPLICABLE", None),
    ],
)
def test_verdicts_follow_the_tag_classification(
    tags: dict[str, str], state: str, compliance: str, words: str | None
) -> None:
    found = evaluate_instance("i-1", tags, state, WINDOWS, NONE, NOW)
    assert found.compliance == compliance
    if words:
        assert found.annotation is not None and words in found.annotation
    else:
        assert found.annotation is None


def test_annotations_are_cut_to_256_characters() -> None:
    # Two patch group keys with different values: TagValidation's reason is over 256 characters.
    found = evaluate_instance("i-1", {**GOOD, "PatchGroup": "db"}, "running", WINDOWS, NONE, NOW)
    assert found.annotation is not None and len(found.annotation) == ANNOTATION_LIMIT
    assert found.annotation.endswith("...")


def test_an_excepted_instance_is_annotated_but_keeps_its_verdict() -> None:
    exceptions = parse_exceptions(
        {
            "exceptions": [
                {"instance_id": "i-0123456789abcdef0", "reason": "r", "approved_by": "a", "expires": "2026-12-01"}
            ]
        },
        "x",
        NOW,
    )
    found = evaluate_instance("i-0123456789abcdef0", {}, "running", WINDOWS, exceptions, NOW)
    assert found.compliance == "NON_COMPLIANT" and found.annotation is not None
    assert found.annotation.startswith("Excepted until 2026-12-01 (r). no patch group tag")
    ok = evaluate_instance("i-0123456789abcdef0", GOOD, "running", WINDOWS, exceptions, NOW)
    assert (ok.compliance, ok.annotation) == ("COMPLIANT", "Excepted until 2026-12-01 (r).")


def item(**overrides: Any) -> dict[str, Any]:
    return {
        "resourceType": "AWS::EC2::Instance",
        "resourceId": "i-1",
        "configurationItemCaptureTime": "2026-11-29T05:59:00.000Z",
        "configurationItemStatus": "OK",
        "tags": GOOD,
        "configuration": {"state": {"name": "running"}},
        **overrides,
    }


def test_an_item_is_judged_as_of_its_capture_time() -> None:
    found = evaluate_item(item(), WINDOWS, NONE, NOW)
    assert found == Evaluation("i-1", "COMPLIANT", None, datetime(2026, 11, 29, 5, 59, tzinfo=UTC))
    # tags from the configuration's list form when the map is absent
    listed = item(
        tags=None, configuration={"state": {"name": "running"}, "tags": [{"key": "Patch Group", "value": "w"}]}
    )
    assert evaluate_item(listed, WINDOWS, NONE, NOW).compliance == "NON_COMPLIANT"  # type: ignore[union-attr]
    assert evaluate_item(item(configurationItemStatus="ResourceDeleted"), WINDOWS, NONE, NOW).compliance == (  # type: ignore[union-attr]
        "NOT_APPLICABLE"
    )
    assert evaluate_item(item(), WINDOWS, NONE, NOW, left_scope=True).compliance == "NOT_APPLICABLE"  # type: ignore[union-attr]
    assert evaluate_item(item(resourceType="AWS::S3::Bucket"), WINDOWS, NONE, NOW) is None


def test_a_change_event_is_read_and_a_bad_one_refused() -> None:
    invoking = {
        "configurationItem": item(),
        "messageType": "ConfigurationItemChangeNotification",
        "notificationCreationTime": "2026-11-29T06:00:00.000Z",
    }
    found, token = evaluations_for_event({"invokingEvent": json.dumps(invoking), "resultToken": "t"}, WINDOWS, NONE)
    assert [e.compliance for e in found] == ["COMPLIANT"] and token == "t"
    with pytest.raises(InvalidConfigEvent):
        evaluations_for_event({"resultToken": "t"}, WINDOWS, NONE)
    with pytest.raises(InvalidConfigEvent, match="messageType"):
        evaluations_for_event(
            {"invokingEvent": json.dumps({**invoking, "messageType": "Other"}), "resultToken": "t"}, WINDOWS, NONE
        )


def test_batches_hold_at_most_100() -> None:
    evaluations = [Evaluation(f"i-{n}", "COMPLIANT", None, NOW) for n in range(250)]
    assert [len(b) for b in batches(evaluations)] == [100, 100, 50]


def change(
    new: str, old: str | None, rule: str = "stack-patch-tags", annotation: str | None = "fix it"
) -> dict[str, Any]:
    detail: dict[str, Any] = {
        "configRuleName": rule,
        "resourceType": "AWS::EC2::Instance",
        "resourceId": "i-1",
        "newEvaluationResult": {"complianceType": new, "annotation": annotation},
    }
    if old:
        detail["oldEvaluationResult"] = {"complianceType": old}
    return {"detail-type": "Config Rules Compliance Change", "detail": detail}


@pytest.mark.parametrize(
    ("event", "told"),
    [
        (change("NON_COMPLIANT", None), True),
        (change("NON_COMPLIANT", "COMPLIANT"), True),
        (change("COMPLIANT", "NON_COMPLIANT"), True),
        (change("COMPLIANT", None), False),
        (change("NON_COMPLIANT", "NON_COMPLIANT"), False),  # unchanged: never re-sent
        (change("NOT_APPLICABLE", "NON_COMPLIANT"), False),
        (change("NON_COMPLIANT", None, rule="other-stack-patch-tags"), False),
        (change("NON_COMPLIANT", None, rule="stack-something-else"), False),
    ],
)
def test_which_changes_are_told(event: dict[str, Any], told: bool) -> None:
    assert (compliance_change(event, "stack-") is not None) is told


def test_a_patch_compliance_change_is_told_about_its_instance() -> None:
    event = change("NON_COMPLIANT", "COMPLIANT", rule="stack-patch-compliance", annotation=None)
    event["detail"] |= {"resourceType": "AWS::SSM::PatchCompliance", "resourceId": "AWS::SSM::PatchCompliance/i-9"}
    found = compliance_change(event, "stack-")
    assert found is not None and (found.kind, found.resource_id) == ("patch_compliance", "i-9")
    event["detail"]["resourceType"] = "AWS::S3::Bucket"
    assert compliance_change(event, "stack-") is None


def test_the_message_says_what_is_wrong_and_the_fix() -> None:
    found = compliance_change(change("NON_COMPLIANT", None, rule="stack-instance-profile", annotation=None), "stack-")
    assert found is not None
    subject, body = message_for(found, "web-1")
    assert "i-1 (web-1)" in subject and len(subject) <= 100
    assert "no IAM instance profile" in body and "AmazonSSMManagedInstanceCore" in body
    tags = compliance_change(
        change("NON_COMPLIANT", None, annotation='no patch group tag: add "Patch Group"'), "stack-"
    )
    assert tags is not None and 'What to fix: no patch group tag: add "Patch Group"' in message_for(tags, None)[1]


def _recorder(**group: Any) -> dict[str, Any]:
    return {"name": "default", "roleARN": "arn:aws:iam::1:role/c", "recordingGroup": group}


NEEDED = ("AWS::EC2::Instance", "AWS::SSM::ManagedInstanceInventory", "AWS::SSM::PatchCompliance")


@pytest.mark.parametrize(
    ("recorders", "missing"),
    [
        ([], list(NEEDED)),  # no recorder at all
        ([_recorder(allSupported=True)], []),
        ([_recorder(allSupported=False, resourceTypes=["AWS::EC2::Instance"])], list(NEEDED[1:])),
        ([_recorder(allSupported=False, resourceTypes=list(NEEDED))], []),
        (
            [
                _recorder(
                    allSupported=False,
                    exclusionByResourceTypes={"resourceTypes": ["AWS::SSM::PatchCompliance"]},
                    recordingStrategy={"useOnly": "EXCLUSION_BY_RESOURCE_TYPES"},
                )
            ],
            ["AWS::SSM::PatchCompliance"],
        ),
    ],
)
def test_the_types_the_recorder_does_not_record_are_named(recorders: list[dict[str, Any]], missing: list[str]) -> None:
    assert unrecorded_types(NEEDED, recorders) == missing


def test_a_one_off_window_already_past_is_non_compliant_as_in_the_cycle() -> None:
    # The same classification as TagValidation (issue #21): a past at() window can never run.
    past = {**GOOD, "Maintenance Window": f"at({(NOW - timedelta(days=1)):%Y-%m-%dT%H:%M:%S})"}
    found = evaluate_instance("i-1", past, "running", WINDOWS, NONE, NOW)
    assert found.compliance == "NON_COMPLIANT"
    assert found.annotation is not None and "this window can never run" in found.annotation
    # Read in the zone schedule-tag windows get: 02:00 in Los Angeles is still ahead at 06:00 UTC.
    ahead = {**GOOD, "Maintenance Window": f"at({NOW:%Y-%m-%d}T02:00:00)"}
    zoned = evaluate_instance(
        "i-1", ahead, "running", WINDOWS, NONE, NOW.replace(hour=6), timezone="America/Los_Angeles"
    )
    assert zoned.compliance == "COMPLIANT"
