"""The audit trail: which Events become lines, how lines are named so a listing is the trail in order, `--since`,
and a writer that keeps every line, in order, while its store is down."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest

from modelops.controllers.audit import AuditLog, FolderStore, open_store
from modelops.resources import audit

WHEN = dt.datetime(2026, 12, 6, 5, 0, 0, 123456, tzinfo=dt.UTC)
VERSION = {
    "apiVersion": "modelops.io/v1alpha1",
    "kind": "ModelVersion",
    "metadata": {"name": "cancer-v2", "namespace": "team-a", "uid": "u-2"},
    "spec": {"model": "cancer", "version": 2},
}


def test_a_decision_becomes_one_json_line_named_by_its_time_under_the_models_prefix() -> None:
    line = audit.record(VERSION, "Normal", "Approved", "Validated → Approved: approved by alice: ok", WHEN)
    assert line is not None
    assert json.loads(line.line()) == {
        "time": "2026-12-06T05:00:00.123456Z",
        "namespace": "team-a",
        "model": "cancer",
        "kind": "ModelVersion",
        "name": "cancer-v2",
        "uid": "u-2",
        "type": "Normal",
        "reason": "Approved",
        "message": "Validated → Approved: approved by alice: ok",
    }
    assert line.line().count("\n") == 1
    assert line.key(7) == "team-a/cancer/20261206T050000.123456Z-ModelVersion-cancer-v2-7.json"
    later = audit.record(VERSION, "Normal", "Archived", "x", WHEN + dt.timedelta(microseconds=1))
    assert later is not None and later.key(0) > line.key(99), "names sort as the trail"


def test_the_operators_own_trouble_and_objects_without_a_model_are_no_decisions() -> None:
    assert audit.record(VERSION, "Warning", "CheckFailed", "the check failed: ReadError", WHEN) is None
    assert audit.record({"kind": "Pod", "metadata": {"name": "p"}}, "Normal", "Started", "", WHEN) is None


@pytest.mark.parametrize(
    ("text", "seconds"), [("180d", 180 * 86400), ("12h", 43200), ("30m", 1800), ("90s", 90), ("1d12h", 129600)]
)
def test_since_reads_durations_as_kubectl_users_write_them(text: str, seconds: int) -> None:
    assert audit.parse_since(text, WHEN) == WHEN - dt.timedelta(seconds=seconds)


@pytest.mark.parametrize("text", ["", "180", "d", "1w", "-1d", "1d ", "1.5h"])
def test_since_refuses_anything_else_naming_the_form(text: str) -> None:
    with pytest.raises(ValueError, match="such as 180d"):
        audit.parse_since(text, WHEN)


def test_a_listing_from_since_holds_exactly_the_lines_at_or_after_it(tmp_path: Path) -> None:
    store = FolderStore(tmp_path)
    times = [WHEN + dt.timedelta(seconds=s) for s in (0, 1, 2)]
    for i, when in enumerate(times):
        line = audit.record(VERSION, "Normal", "Validated", f"step {i}", when)
        assert line is not None
        store.put(line.key(i), line.line().encode())
    keys = store.keys(audit.model_prefix("team-a", "cancer"), audit.since_key("team-a", "cancer", times[1]))
    assert [json.loads(store.get(k))["message"] for k in keys] == ["step 1", "step 2"]
    assert store.keys(audit.model_prefix("team-a", "other"), "") == []


class Flaky(FolderStore):
    """A store down for its first few writes."""

    def __init__(self, root: Path, failures: int) -> None:
        super().__init__(root)
        self.failures = failures
        self.tries = 0

    def put(self, key: str, body: bytes) -> None:
        self.tries += 1
        if self.tries <= self.failures:
            raise ConnectionError("store down")
        super().put(key, body)


def test_lines_wait_in_order_while_the_store_is_down_and_none_is_lost(tmp_path: Path) -> None:
    store = Flaky(tmp_path, failures=3)
    log = AuditLog(store, retry_seconds=0.01)
    for i in range(5):
        line = audit.record(VERSION, "Normal", "Step", f"step {i}", WHEN + dt.timedelta(seconds=i))
        assert line is not None
        log.append(line)
    assert log.flush(timeout=10)
    keys = store.keys(audit.model_prefix("team-a", "cancer"), "")
    assert [json.loads(store.get(k))["message"] for k in keys] == [f"step {i}" for i in range(5)]
    assert store.tries == 5 + 3


def test_without_an_audit_uri_nothing_is_kept_and_a_bad_uri_names_the_form() -> None:
    log = AuditLog(None)
    line = audit.record(VERSION, "Normal", "Step", "x", WHEN)
    assert line is not None
    log.append(line)
    assert log.lines.qsize() == 0 and log.flush(timeout=1)
    with pytest.raises(ValueError, match="file:///folder or s3://bucket/prefix"):
        open_store("https://example.com/audit")


def test_a_monitors_decisions_go_to_the_trail_of_the_model_its_deployment_serves() -> None:
    monitor = {"kind": "ModelMonitor", "metadata": {"name": "cancer", "namespace": "team-a"}, "spec": {}}
    assert audit.record(monitor, "Warning", "DriftDetected", "drift in 3 features", WHEN) is None
    line = audit.record(monitor, "Warning", "DriftDetected", "drift in 3 features", WHEN, model="cancer")
    assert line is not None and (line.kind, line.name, line.model) == ("ModelMonitor", "cancer", "cancer")
