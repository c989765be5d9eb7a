"""Small builders for integration scenarios in the simulated account."""

from __future__ import annotations

import html
import itertools
import json
import math
import re
import shutil
import subprocess
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from types import MappingProxyType
from typing import Any

import yaml

from tagpatch_local.fleet import FleetInstance
from tagpatch_local.report import change_lines, problems
from tagpatch_local.runner import CycleResult, SimulatedAccount
from tagpatch_local.template import load_template

REPO = Path(__file__).resolve().parents[2]

_names = itertools.count(1)


def chromium() -> str:
    """Headless Chromium (Debian's package), which the report tests render report.html in."""
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        raise AssertionError("chromium is not installed; scripts/setup.sh installs Debian's package")
    return found


# Runs in the wrapper page once the report has loaded in its iframe, and writes what it measured into
# the DOM that --dump-dom prints.
LAYOUT_PROBE = """<script>
window.onload = () => {
  const frame = document.getElementById('page');
  const doc = frame.contentDocument;
  const owners = {};
  for (const section of doc.querySelectorAll('[id^="owner-"]')) owners[section.id] = section.textContent;
  const figures = {
    viewport: frame.contentWindow.innerWidth,
    scrollWidth: doc.documentElement.scrollWidth,
    tables: [...doc.querySelectorAll('table')].map(t => frame.contentWindow.getComputedStyle(t).display),
    ids: [...doc.querySelectorAll('[id]')].map(e => e.id),
    ownerLinks: [...doc.querySelectorAll('a[href^="#owner-"]')].map(a => a.getAttribute('href')),
    owners,
    // How many lines each instance id in the actions table is laid out on (1: not broken up).
    idLines: [...doc.querySelectorAll('#actions td[data-label="instance"]')].map(td => {
      const range = doc.createRange();
      range.selectNodeContents(td);
      return new Set([...range.getClientRects()].map(r => Math.round(r.top))).size;
    }),
    // The narrowest cell of each of the actions table's columns, in px.
    narrowest: Object.fromEntries([...doc.querySelectorAll('#actions th')].map(th => [th.textContent,
      Math.min(...[...doc.querySelectorAll(`#actions td[data-label="${th.textContent}"]`)].map(
        td => td.getBoundingClientRect().width))])),
  };
  const out = document.createElement('pre');
  out.id = 'probe';
  out.textContent = JSON.stringify(figures);
  document.body.append(out);
};
</script>"""


def page_layout(report_html: str, width: int, folder: Path) -> dict[str, Any]:
    """report.html as headless Chromium lays it out in a frame `width` px wide (Chromium will not make a
    window narrower than 500 px): the frame's viewport, the page's scroll width, each table's display,
    the ids, the owner links, each owner section's text, and the lines each actions-table instance id takes."""
    wrapper = folder / f"wrapper-{width}.html"
    wrapper.write_text(
        '<!doctype html><html><body style="margin:0">'
        f'<iframe id="page" style="width:{width}px;height:900px;border:0" srcdoc="{html.escape(report_html)}">'
        f"</iframe>{LAYOUT_PROBE}</body></html>"
    )
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--hide-scrollbars"]
    dom = subprocess.run(
        [chromium(), *flags, "--window-size=1400,1000", "--dump-dom", wrapper.as_uri()],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    ).stdout
    probe = re.search(r'<pre id="probe">(.*?)</pre>', dom, re.S)
    assert probe, dom[-2000:]
    figures: dict[str, Any] = json.loads(html.unescape(probe.group(1)))
    assert figures["viewport"] == width, "the frame did not set the viewport"
    return figures


def read(path: Path) -> list[dict[str, Any]]:
    """A JSON Lines output file of a CLI run (instances.jsonl, changes.jsonl, ...)."""
    return [json.loads(line) for line in path.read_text().splitlines()]


def by_name(path: Path) -> dict[str, dict[str, Any]]:
    return {line["name"]: line for line in read(path)}


def changed(folder: Path) -> set[tuple[str, str, str]]:
    """What a CLI run's cycle changed: (kind, action, name) of each change that was not `unchanged`."""
    return {(c["kind"], c["action"], c["name"]) for c in read(folder / "changes.jsonl") if c["action"] != "unchanged"}


def instance(
    group: str | None,
    window: str | None,
    *,
    os: str = "AMAZON_LINUX_2023",
    key: str = "Patch Group",
    name: str | None = None,
    state: str = "running",
    ssm: str = "online",
) -> FleetInstance:
    tags = {"Name": name or f"node-{next(_names)}", "Owner": "team-test"}
    if group is not None:
        tags[key] = group
    if window is not None:
        tags["Maintenance Window"] = window
    return FleetInstance(tags=MappingProxyType(tags), os=os, state=state, ssm=ssm)  # type: ignore[arg-type]


def topic_queue(
    account: SimulatedAccount,
    topic: str = "AlertsTopic",
    *,
    queue: str = "alerts",
    filter_policy: dict[str, Any] | None = None,
) -> Callable[[], list[dict[str, Any]]]:
    """An SQS queue subscribed to one of the stack's topics (the alerts topic unless told), optionally
    with a filter policy; returns a function that drains it: each message's SNS envelope (Subject,
    Message, MessageAttributes), in the order received, deleted once read."""
    sqs, sns = account.client("sqs"), account.client("sns")
    url = sqs.create_queue(QueueName=queue)["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    attributes = {"FilterPolicy": json.dumps(filter_policy)} if filter_policy is not None else {}
    sns.subscribe(TopicArn=account.physical_id(topic), Protocol="sqs", Endpoint=arn, Attributes=attributes)

    def drain() -> list[dict[str, Any]]:
        found = []
        while messages := sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", []):
            for message in messages:
                found.append(json.loads(message["Body"]))
                sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
        return found

    return drain


def run_ok(account: SimulatedAccount, execution_input: Any = None) -> CycleResult:
    result = account.run_cycle(execution_input)
    assert result.status == "SUCCEEDED", (result.error, result.cause)
    return result


def changes(account: SimulatedAccount, result: CycleResult) -> list[dict[str, Any]]:
    return change_lines(account, result)


def change_keys(account: SimulatedAccount, result: CycleResult) -> set[tuple[str, str, str, str | None]]:
    return {(c["kind"], c["action"], c["name"], c.get("window")) for c in changes(account, result)}


def reported(account: SimulatedAccount, result: CycleResult) -> list[dict[str, Any]]:
    return problems(account, result)


def ssm_windows(account: SimulatedAccount) -> dict[str, dict[str, Any]]:
    ssm = account.client("ssm")
    return {w["Name"]: w for w in ssm.describe_maintenance_windows(MaxResults=100)["WindowIdentities"]}


def window_targets(account: SimulatedAccount, window_id: str) -> list[dict[str, Any]]:
    targets: list[dict[str, Any]] = account.client("ssm").describe_maintenance_window_targets(
        WindowId=window_id, MaxResults=100
    )["Targets"]
    return targets


def registrations(account: SimulatedAccount) -> dict[tuple[str, str], str]:
    mappings = account.client("ssm").describe_patch_groups(MaxResults=100)["Mappings"]
    return {
        (m["PatchGroup"], m["BaselineIdentity"]["OperatingSystem"]): m["BaselineIdentity"]["BaselineId"]
        for m in mappings
    }


def pages(count: int, size: int) -> int:
    return math.ceil(count / size)


def run_with_rejected_windows(account: SimulatedAccount) -> CycleResult:
    """A cycle in which SSM rejected at least one window: it ends FAILED and says so, never SUCCEEDED."""
    result = account.run_cycle()
    assert (result.status, result.error) == ("FAILED", "WindowChangesRejected"), (result.error, result.cause)
    assert result.output is not None  # the state the Fail state received, with every window's result
    return result


@contextmanager
def template_variant(edit: Callable[[dict[str, Any]], None]) -> Iterator[Path]:
    """template.yaml with `edit` applied, beside it (its CodeUri paths are relative), removed afterwards."""
    document = load_template(REPO / "template.yaml")
    edit(document)
    path = REPO / f".template-test-{uuid.uuid4().hex[:8]}.yaml"
    # Long-form intrinsics (Ref, Fn::Sub) read back exactly as the short forms did.
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    try:
        yield path
    finally:
        path.unlink()
