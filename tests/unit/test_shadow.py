"""Shadow steps without a cluster: the stable server's mirror against a real local HTTP shadow (sampling, comparing,
never blocking the caller), the comparison's counts in a window, the shadow gates, and the children a shadow step
applies."""

from __future__ import annotations

import http.server
import json
import threading
import time
from collections.abc import Iterator
from typing import Any

import prometheus_client
import pytest

from modelops.api.v1alpha1 import ModelDeployment
from modelops.api.v1alpha1.modeldeployment import CanaryAnalysis
from modelops.contract import serving as wire
from modelops.resources import analysis
from modelops.resources import modeldeployment as children
from modelops.resources.measure import Scope, ServingTotals, prometheus_queries, serving_totals, since
from modelops.runtime import mirror
from tests.support.objects import MODEL, NAMESPACE
from tests.support.objects import version as model_version
from tests.unit.test_canary_gates import T0, totals

# -- the mirror ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("share", "taken"), [(100, 40), (25, 10), (1, 0), (50, 20)])
def test_the_sampler_mirrors_exactly_its_share(share: int, taken: int) -> None:
    sampler = mirror.Sampler(share)
    assert sum(sampler.take() for _ in range(40)) == taken


def test_predictions_are_compared_record_by_record() -> None:
    assert mirror.compare([0, 1, 1, 2], [0, 1, 2, 2], categorical=True) == mirror.Comparison(4, 3, 0.0)
    assert mirror.compare([1.5, 2.0], [1.0, 3.0], categorical=False) == mirror.Comparison(2, 0, 1.5)


class Shadow(http.server.ThreadingHTTPServer):
    """A shadow server on loopback that answers `/predict` with `answer(records)`, after `delay` seconds."""

    def __init__(self, answer: Any, delay: float = 0.0, status: int = 200) -> None:
        self.answer, self.delay, self.status, self.seen = answer, delay, status, 0
        super().__init__(("127.0.0.1", 0), _Handler)
        threading.Thread(target=self.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/predict"


class _Handler(http.server.BaseHTTPRequestHandler):
    server: Shadow

    def do_POST(self) -> None:
        records = json.loads(self.rfile.read(int(self.headers["Content-Length"])))["records"]
        time.sleep(self.server.delay)
        self.server.seen += 1
        body = json.dumps({"predictions": self.server.answer(records)}).encode()
        self.send_response(self.server.status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_: Any) -> None:
        pass


@pytest.fixture(scope="module")
def metrics() -> mirror.ShadowMetrics:
    return mirror.ShadowMetrics()  # once per process, as in a server worker


@pytest.fixture
def labels(request: pytest.FixtureRequest) -> dict[str, str]:
    """Labels of this test's own series (the counters are process-wide)."""
    return {"model": "cancer", "version": "1", "shadow_version": request.node.name}


def counted(metric: str, labels: dict[str, str], **more: str) -> float:
    return prometheus_client.REGISTRY.get_sample_value(f"{metric}_total", {**labels, **more}) or 0.0


def settles(check: Any, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "the mirror did not finish"
        time.sleep(0.02)


@pytest.fixture
def shadows() -> Iterator[list[Shadow]]:
    started: list[Shadow] = []
    yield started
    for shadow in started:
        shadow.shutdown()
        shadow.server_close()


def test_a_classifiers_answers_are_compared_with_the_shadows_on_the_same_records(
    metrics: mirror.ShadowMetrics, labels: dict[str, str], shadows: list[Shadow]
) -> None:
    shadows.append(shadow := Shadow(lambda records: [r["x"] % 2 for r in records]))  # agrees on the even ones
    mirrored = mirror.Mirror(shadow.url, 100, metrics, labels, categorical=True)
    for start in range(0, 20, 5):
        records = [{"x": x} for x in range(start, start + 5)]
        mirrored.offer(records, [0] * len(records))
    settles(lambda: counted(wire.SHADOW_COMPARED, labels) == 20)
    assert counted(wire.SHADOW_AGREED, labels) == 10
    assert shadow.seen == 4


def test_a_regressors_answers_are_compared_by_their_absolute_difference(
    metrics: mirror.ShadowMetrics, labels: dict[str, str], shadows: list[Shadow]
) -> None:
    shadows.append(shadow := Shadow(lambda records: [r["x"] + 0.5 for r in records]))
    mirrored = mirror.Mirror(shadow.url, 50, metrics, labels, categorical=False)
    for x in range(8):
        mirrored.offer([{"x": x}], [float(x)])
    settles(lambda: counted(wire.SHADOW_COMPARED, labels) == 4)  # half of the requests
    assert counted(wire.SHADOW_DIFFERENCE, labels) == pytest.approx(2.0)
    assert counted(wire.SHADOW_AGREED, labels) == 0


def test_a_shadow_that_rejects_or_cannot_be_reached_is_counted_not_compared(
    metrics: mirror.ShadowMetrics, labels: dict[str, str], shadows: list[Shadow]
) -> None:
    shadows.append(failing := Shadow(lambda records: "bad input", status=400))
    mirror.Mirror(failing.url, 100, metrics, labels, categorical=True).offer([{"x": 1}], [0])
    settles(lambda: counted(wire.SHADOW_FAILURES, labels, kind="rejected") == 1)
    gone = "http://127.0.0.1:9/predict"  # the discard port: nobody listens
    mirror.Mirror(gone, 100, metrics, labels, categorical=True).offer([{"x": 1}], [0])
    settles(lambda: counted(wire.SHADOW_FAILURES, labels, kind="unreachable") == 1)
    assert counted(wire.SHADOW_COMPARED, labels) == 0


def test_offering_never_waits_for_a_slow_shadow_it_drops_what_it_cannot_hold(
    metrics: mirror.ShadowMetrics, labels: dict[str, str], shadows: list[Shadow]
) -> None:
    shadows.append(slow := Shadow(lambda records: [0] * len(records), delay=2.0))
    mirrored = mirror.Mirror(slow.url, 100, metrics, labels, categorical=True)
    offers = mirror.CAPACITY + mirror.SENDERS + 10
    started = time.perf_counter()
    for _ in range(offers):
        mirrored.offer([{"x": 1}], [0])
    assert time.perf_counter() - started < 0.5, "the caller's request waited for the shadow"
    assert counted(wire.SHADOW_FAILURES, labels, kind="dropped") >= 10 - 1


# -- counts and gates ------------------------------------------------------------------------------------------


def scrape(compared: float, agreed: float, dropped: float = 0, shadow: str = "2") -> str:
    """A stable pod's /metrics text with its comparison series."""
    labels = f'model="cancer",version="1",shadow_version="{shadow}"'
    lines = [
        f'{wire.REQUESTS}_total{{model="cancer",version="1"}} {compared}',
        f"{wire.SHADOW_COMPARED}_total{{{labels}}} {compared}",
        f"{wire.SHADOW_AGREED}_total{{{labels}}} {agreed}",
    ]
    if dropped:
        lines.append(f'{wire.SHADOW_FAILURES}_total{{{labels},kind="dropped"}} {dropped}')
    return "\n".join(lines) + "\n"


def test_the_stable_pods_comparison_counts_over_a_window_like_any_counter() -> None:
    before = {"a": serving_totals([scrape(100, 80)])}
    now = {"a": serving_totals([scrape(300, 230, dropped=4)]), "b": serving_totals([scrape(50, 50)])}
    assert since(before, now).mirrored == {"2": {"compared": 250.0, "agreed": 200.0, "dropped": 4.0}}


def test_prometheus_reads_the_comparison_with_this_shadow_only_in_a_shadow_step() -> None:
    plain = prometheus_queries(Scope(NAMESPACE, MODEL, "1"), "60s")
    assert not any("shadow" in q for q in plain.values())
    shadowed = prometheus_queries(Scope(NAMESPACE, MODEL, "1", "2"), "60s")
    compared = shadowed[f"{wire.SHADOW_COMPARED}_total"]
    assert 'version="1",shadow_version="2"' in compared and compared.startswith("sum by (shadow_version) (increase(")


SHADOW_GATES = CanaryAnalysis.model_validate({"minAgreement": 0.9, "maxMeanAbsoluteDifference": 0.5, "minRecords": 100})


def shadow_window(mirrored: dict[str, float], shadow: str = "2") -> analysis.Window:
    stable = ServingTotals(**{**vars(totals(200)), "mirrored": {shadow: mirrored}})
    return analysis.Window(totals(200), stable, T0, 60.0, "pods", shadow="2")


def shadow_gate(checks: CanaryAnalysis, mirrored: dict[str, float], name: str) -> Any:
    return next(g for g in analysis.measure_gates(checks, shadow_window(mirrored)) if g.gate == name)


@pytest.mark.parametrize(
    ("mirrored", "verdict", "value"),
    [
        ({"compared": 200, "agreed": 190}, "Pass", 0.95),
        ({"compared": 200, "agreed": 180}, "Pass", 0.9),  # the floor is tolerated
        ({"compared": 200, "agreed": 100}, "Fail", 0.5),
        ({"compared": 50, "agreed": 50}, "Inconclusive", None),
    ],
)
def test_the_agreement_gate_is_a_floor_on_the_share_of_records_classified_alike(
    mirrored: dict[str, float], verdict: str, value: float | None
) -> None:
    checks = CanaryAnalysis.model_validate({"minAgreement": 0.9})
    result = shadow_gate(checks, mirrored, "agreement")
    assert (result.verdict, result.value) == (verdict, value)


def test_a_failed_agreement_says_it_is_below_the_floor() -> None:
    result = shadow_gate(
        CanaryAnalysis.model_validate({"minAgreement": 0.9}), {"compared": 200, "agreed": 100}, "agreement"
    )
    assert analysis.describe(result) == (
        "agreement with stable on mirrored records 50.0% over 200 records is below minAgreement 90.0%"
    )


def test_the_mean_absolute_difference_gate_judges_a_regressor() -> None:
    checks = CanaryAnalysis.model_validate({"maxMeanAbsoluteDifference": 0.5})
    assert shadow_gate(checks, {"compared": 200, "difference": 80}, "meanAbsoluteDifference").value == 0.4
    failed = shadow_gate(checks, {"compared": 200, "difference": 150}, "meanAbsoluteDifference")
    assert (failed.verdict, failed.value) == ("Fail", 0.75)


def test_a_gate_of_the_other_kind_of_model_is_inconclusive_and_says_which_to_use() -> None:
    result = shadow_gate(SHADOW_GATES, {"compared": 200, "difference": 80}, "agreement")
    assert result.verdict == "Inconclusive"
    assert result.detail == "not measurable: the model is a regressor: use maxMeanAbsoluteDifference"


def test_mirrored_requests_without_an_answer_are_named_beside_the_agreement() -> None:
    result = shadow_gate(SHADOW_GATES, {"compared": 200, "agreed": 190, "unreachable": 3, "dropped": 2}, "agreement")
    assert result.verdict == "Pass"
    assert result.detail == "mirrored requests without an answer: 2 dropped, 3 unreachable"


def test_a_shadow_steps_measurement_reports_the_comparison_even_without_its_gates() -> None:
    window = shadow_window({"compared": 200, "agreed": 150, "rejected": 1})
    judgement = analysis.judge_step(CanaryAnalysis(), 0, 2, 60.0, window, True, 60.0)
    assert judgement.outcome == "Pass" and judgement.reason.startswith("step 1/2 (shadow) healthy")
    shadow = judgement.measurement.shadow
    assert shadow is not None and (shadow.compared, shadow.agreement, shadow.rejected) == (200, 0.75, 1)
    assert not any(g.gate == "agreement" for g in judgement.measurement.gates or [])


def test_another_shadows_comparison_is_not_read_as_this_ones() -> None:
    window = analysis.Window(
        totals(200),
        ServingTotals(**{**vars(totals(200)), "mirrored": {"7": {"compared": 500, "agreed": 0}}}),
        T0,
        60.0,
        "pods",
        shadow="2",
    )
    result = next(g for g in analysis.measure_gates(SHADOW_GATES, window) if g.gate == "agreement")
    assert result.verdict == "Inconclusive" and result.samples == 0


# -- the children of a shadow step ----------------------------------------------------------------------------


def shadowed_deployment() -> ModelDeployment:
    steps = [{"weight": 0, "mirror": 25, "pause": "1m"}, {"weight": 50, "pause": "1m"}]
    return ModelDeployment.model_validate(
        {
            "metadata": {"name": "d", "namespace": NAMESPACE, "uid": "u1"},
            "spec": {"model": MODEL, "replicas": 2, "rollout": {"strategy": "Canary", "canary": {"steps": steps}}},
        }
    )


def env(manifest: dict[str, Any]) -> dict[str, str]:
    """The container's plain environment (what comes from the downward API left out)."""
    return {e["name"]: e["value"] for e in manifest["spec"]["template"]["spec"]["containers"][0]["env"] if "value" in e}


def test_the_shadow_runs_behind_its_own_service_which_the_deployments_service_does_not_select() -> None:
    md = shadowed_deployment()
    shadow = children.server_deployment(md, model_version(2), "shadow", 1, children.ServerSettings("img"))
    pod_labels = shadow["spec"]["template"]["metadata"]["labels"]
    main, own = children.service(md)["spec"]["selector"], children.service(md, "shadow")
    assert shadow["metadata"]["name"] == own["metadata"]["name"] == "d-shadow"
    assert not all(pod_labels.get(k) == v for k, v in main.items()), "callers never reach the shadow"
    assert all(pod_labels.get(k) == v for k, v in own["spec"]["selector"].items())
    assert env(shadow)[wire.MODEL_VERSION_ENV] == "2" and wire.SHADOW_URL_ENV not in env(shadow)


def test_the_stable_servers_are_told_where_to_mirror_which_share_and_the_shadows_version() -> None:
    md = shadowed_deployment()
    told = children.mirroring(md, model_version(2), 25)
    stable = env(children.server_deployment(md, model_version(1), "stable", 2, children.ServerSettings("img"), told))
    assert stable[wire.SHADOW_URL_ENV] == f"http://d-shadow.{NAMESPACE}.svc:80/predict"
    assert (stable[wire.SHADOW_SHARE_ENV], stable[wire.SHADOW_VERSION_ENV]) == ("25", "2")
    assert wire.SHADOW_URL_ENV not in env(
        children.server_deployment(md, model_version(1), "stable", 2, children.ServerSettings("img"))
    )
