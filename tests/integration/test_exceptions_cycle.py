"""Patch exceptions through the real state machine: an excepted instance is reported, not alerted,
its owner and governance are told before and at expiry, and after expiry the rules apply again."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import yaml

from tagpatch.inventory import decode_jsonl_gz
from tagpatch_local.runner import SimulatedAccount

from .support import instance, run_ok
from .test_patch_monitoring import FRIDAY_NOON, owner_queue

REPO = Path(__file__).resolve().parents[2]


def artifact(account: SimulatedAccount, key: str) -> list[dict[str, Any]]:
    body = account.client("s3").get_object(Bucket=account.artifact_bucket, Key=key)["Body"].read()
    return list(decode_jsonl_gz(body))


def by_name(account: SimulatedAccount, key: str) -> dict[str, dict[str, Any]]:
    names = {line["instance_id"]: line.get("name") for line in artifact(account, key)}
    return {str(names[line["instance_id"]]): line for line in artifact(account, key)}


def write_exceptions(path: Path, *entries: dict[str, Any]) -> Path:
    path.write_text(yaml.safe_dump({"version": 1, "settings": {"notice_days": [7]}, "exceptions": list(entries)}))
    return path


def test_an_excepted_instance_is_reported_not_alerted_until_its_exception_expires(tmp_path: Path) -> None:
    with SimulatedAccount(REPO / "template.yaml") as account:
        account.set_clock(FRIDAY_NOON)
        ids = dict(
            zip(
                ("web-bad", "vendor-box"),
                account.seed(
                    [instance("web", "sun-0200", name="web-bad"), instance("web", "sun-0200", name="vendor-box")]
                ),
                strict=True,
            )
        )
        for instance_id in ids.values():
            account.set_patch_behaviour(instance_id, {"missing": 3, "result": "failed"})
        exception = {
            "name": "vendor-box",
            "reason": "vendor appliance",
            "approved_by": "gov-lead",
            "expires": "2026-12-01",
            "ticket": "CHG-7",
        }
        # A malformed entry next to it is skipped with its reason; the cycle goes on.
        account.use_exceptions(
            write_exceptions(tmp_path / "exceptions.yaml", exception, {"name": "web-bad", "reason": "x"})
        )
        team, governance = owner_queue(account, "team-test"), owner_queue(account, "governance")

        friday = run_ok(account)
        validation = friday.output["validation"]  # type: ignore[index]
        assert validation["by_class"]["excepted"] == 1 and validation["exception_errors"] == 1
        lines = by_name(account, validation["instances_key"])
        assert (lines["vendor-box"]["class"], lines["vendor-box"]["tag_class"]) == ("excepted", "ready")
        assert lines["vendor-box"]["exception"]["expires"] == "2026-12-01"
        assert lines["web-bad"]["class"] == "ready"
        report = json.loads(
            account.client("s3").get_object(Bucket=account.artifact_bucket, Key=validation["report_key"])["Body"].read()
        )
        assert "approved_by must be" in report["exception_errors"][0]
        # Four days before expiry, inside the 7-day notice: the owner and governance are told once each.
        (notice,) = team()
        assert "expires in 4 days" in notice["Subject"] and "vendor-box" in notice["Message"]
        assert notice["MessageAttributes"]["owner"]["Value"] == "team-test"
        assert len(governance()) == 1

        account.advance(timedelta(hours=40))  # Sunday: the window runs and both instances fail
        sunday = run_ok(account)
        monitoring = sunday.output["monitoring"]  # type: ignore[index]
        # MaxErrors lets no error through: whichever SSM tries first fails, the other is not sent (missed).
        assert monitoring["by_outcome"]["excepted"] == 1
        assert monitoring["by_outcome"]["failed"] + monitoring["by_outcome"]["missed"] == 1
        results = by_name(account, monitoring["results_key"])
        assert results["vendor-box"]["outcome"] == "excepted"
        assert "until 2026-12-01" in results["vendor-box"]["reason"]
        assert any(f"without it: {o}" in results["vendor-box"]["reason"] for o in ("failed", "missed"))
        # The compliance export marks it excepted, with the exception, and asks its owner for nothing.
        compliance = sunday.output["compliance"]  # type: ignore[index]
        assert compliance["counts"]["excepted"] == 1
        records = by_name(account, compliance["snapshot_key"])
        assert (records["vendor-box"]["class"], records["vendor-box"]["tag_class"]) == ("excepted", "ready")
        assert records["vendor-box"]["exception"]["ticket"] == "CHG-7"
        assert records["web-bad"]["exception"] is None and records["web-bad"]["tag_class"] == "ready"
        page = account.client("s3").get_object(Bucket=account.artifact_bucket, Key=compliance["report_key"])
        html = page["Body"].read().decode()
        assert '<div class=big id="excepted">1</div>' in html
        needing_action = html.split("Instances that need action", 1)[1]
        assert "web-bad" in needing_action and "vendor-box" not in needing_action
        (alert,) = team()  # the failure alert names web-bad only; no second expiry notice
        assert "web-bad" in alert["Message"] and "vendor-box" not in alert["Message"]
        assert governance() == []

        account.advance(timedelta(days=3))  # Wednesday 2 December: the exception has expired
        after = run_ok(account)
        lines = by_name(account, after.output["validation"]["instances_key"])  # type: ignore[index]
        assert lines["vendor-box"]["class"] == "ready" and "exception" not in lines["vendor-box"]
        assert lines["vendor-box"]["expired_exception"]["expires"] == "2026-12-01"
        assert after.output["validation"]["expired_exceptions"] == 1  # type: ignore[index]
        expired = [m for m in team() if "has expired" in m["Subject"]]
        assert len(expired) == 1 and "held to the patching rules again" in expired[0]["Message"]
        assert len(governance()) == 1
        # Told once: the next cycle says nothing more about it.
        run_ok(account)
        assert [m for m in team() if "exception" in m["Subject"]] == [] and governance() == []
