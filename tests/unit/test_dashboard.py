"""The chart's Grafana dashboard queries only what the code exports: every metric name in a panel's, or a
variable's, PromQL is a series the operator or a serving pod really exports, with the labels it selects,
groups and shows — both read from the real metric objects, not from a list kept here."""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Iterable
from typing import Any

import prometheus_client
import promql_parser
import pytest
from prometheus_client.metrics import MetricWrapperBase

from tests.support.paths import ROOT

DASHBOARD = ROOT / "charts/modelops/dashboards/modelops.json"
#: The series a family of each type exports (prometheus_client's exposition).
SUFFIXES = {
    "counter": ("_total", "_created"),
    "gauge": ("",),
    "histogram": ("_bucket", "_count", "_sum", "_created"),
    "gaugehistogram": ("_bucket", "_gcount", "_gsum"),
    "summary": ("", "_count", "_sum", "_created"),
    "info": ("_info",),
    "stateset": ("",),
    "enum": ("",),
    "unknown": ("",),
}
#: Labels Prometheus adds from the scraped target (Kubernetes discovery, a PodMonitor or ServiceMonitor), not the code.
TARGET_LABELS = frozenset({"namespace", "pod", "container", "service", "endpoint", "job", "instance"})
#: Grafana's interval variables, which are no PromQL: any duration stands in for them.
GRAFANA_DURATION = re.compile(r"\$(?:__(?:rate_interval|interval|range)\b|\{__(?:rate_interval|interval|range)\})")
LEGEND_LABEL = re.compile(r"\{\{\s*(\w+)\s*\}\}")
VARIABLE_QUERY = re.compile(r"^\s*(label_values|query_result)\((.*)\)\s*$", re.DOTALL)


#: Exported series name → the labels it carries (None: only known at run time, as an Info's).
Series = dict[str, frozenset[str] | None]


def exported(registry: prometheus_client.CollectorRegistry, metrics: Iterable[MetricWrapperBase]) -> Series:
    """The series names `metrics` export through `registry`, read back from `registry.collect()`.

    Label names come from the metric objects (`_labelnames`: prometheus_client keeps no public accessor, and an
    unused labelled family has no samples to read them from); an Info's labels are its payload, set at run time."""
    labels = {family.name: frozenset(m._labelnames) for m in metrics for family in m.describe()}
    families = {family.name: family for family in registry.collect() if family.name in labels}
    missing = set(labels) - set(families)
    assert not missing, f"metric families not registered in the registry that is served: {sorted(missing)}"
    series: Series = {}
    for name, family in families.items():
        for suffix in SUFFIXES[family.type]:
            own = labels[name] | TARGET_LABELS | ({"le"} if suffix == "_bucket" else set())
            series[name + suffix] = None if family.type == "info" else own
    return series


def operator_series() -> Series:
    """What the operator serves on --metrics-port: the default registry, holding modelops.controllers.metrics."""
    from modelops.controllers import metrics

    objects = [v for v in vars(metrics).values() if isinstance(v, MetricWrapperBase)]
    assert objects, "modelops.controllers.metrics defines no metrics"
    return exported(prometheus_client.REGISTRY, objects)


def serving_series(monkeypatch: pytest.MonkeyPatch) -> Series:
    """What a serving pod exports: the real Telemetry, its bentoml.metrics (prometheus_client's classes, looked up
    lazily, hence set in the module's namespace) bound to a fresh registry so nothing lands in the default one."""
    import bentoml.metrics

    from modelops.runtime.telemetry import Telemetry

    registry = prometheus_client.CollectorRegistry()
    for kind in ("Counter", "Gauge", "Histogram", "Summary", "Info", "Enum"):
        monkeypatch.setitem(
            vars(bentoml.metrics), kind, functools.partial(getattr(prometheus_client, kind), registry=registry)
        )
    telemetry = Telemetry({"features": [], "prediction": {"kind": "numeric", "edges": [0.5]}}, "m", "1")
    objects = [v for v in vars(telemetry).values() if isinstance(v, MetricWrapperBase)]
    assert objects, "Telemetry defines no metrics"
    return exported(registry, objects)


@pytest.fixture(scope="module")
def dashboard() -> dict[str, Any]:
    return json.loads(DASHBOARD.read_text())


@pytest.fixture(scope="module")
def series() -> Iterable[Series]:
    with pytest.MonkeyPatch.context() as monkeypatch:
        serving = serving_series(monkeypatch)
    operator = operator_series()
    both = set(serving) & set(operator)
    assert not both, f"the operator and the serving pods export the same names: {sorted(both)}"
    yield {**serving, **operator}


def panels(dashboard: dict[str, Any]) -> Iterable[dict[str, Any]]:
    """Every panel, those inside rows (collapsed rows hold theirs) included; rows themselves are not panels."""
    for panel in dashboard["panels"]:
        if panel["type"] == "row":
            yield from panel.get("panels", [])
        else:
            yield panel


def queries(dashboard: dict[str, Any]) -> Iterable[tuple[str, str, str | None, str | None]]:
    """(where, PromQL, legend, label asked of it) of every panel target and every Prometheus query variable."""
    for panel in panels(dashboard):
        for target in panel["targets"]:
            yield f"panel {panel['title']!r} {target['refId']}", target["expr"], target.get("legendFormat"), None
    for variable in dashboard["templating"]["list"]:
        if variable["type"] != "query":
            continue
        query = variable["query"]["query"] if isinstance(variable["query"], dict) else variable["query"]
        match = VARIABLE_QUERY.match(query)
        assert match, f"variable {variable['name']}: {query!r} is neither label_values(…) nor query_result(…)"
        function, args = match.groups()
        if function == "label_values":
            expr, _, label = args.rpartition(",")
            assert expr, f"variable {variable['name']}: label_values needs a metric to check, as label_values(m, l)"
            yield f"variable {variable['name']}", expr, None, label.strip()
        else:
            yield f"variable {variable['name']}", args, None, None


def selectors(expr: promql_parser.Expr) -> list[promql_parser.VectorSelector]:
    """Every vector selector, those inside matrix selectors, subqueries, calls, aggregations and operations too."""
    found: list[promql_parser.VectorSelector] = []
    promql_parser.walk(
        expr, lambda node: found.append(node) if isinstance(node, promql_parser.VectorSelector) else None
    )
    return found


def metric_name(selector: promql_parser.VectorSelector) -> str:
    if selector.name:
        return selector.name
    named = [
        m.value for m in selector.matchers.matchers if m.name == "__name__" and m.op == promql_parser.MatchOp.Equal
    ]
    assert named, f"{selector} names no metric: no name to check"
    return named[0]


def check(where: str, text: str, legend: str | None, asked: str | None, series: Series) -> list[str]:
    """What is wrong with one query: unknown metric names, and labels its series do not carry."""
    expr = promql_parser.parse(GRAFANA_DURATION.sub("5m", text))
    problems: list[str] = []
    used: Series = {}
    for selector in selectors(expr):
        name = metric_name(selector)
        if name not in series:
            problems.append(f"{where}: {name} is not exported by the operator or the serving pods")
            continue
        used[name] = series[name]
        labels = series[name]
        selected = {m.name for m in selector.matchers.matchers} - {"__name__"}
        if labels is not None and selected - labels:
            problems.append(f"{where}: {name} has no label {sorted(selected - labels)}")
    assert used or problems, f"{where}: {text!r} selects no metric"
    if problems or any(labels is None for labels in used.values()):
        return problems
    known = frozenset().union(*used.values())  # type: ignore[arg-type]

    def grouping(node: promql_parser.Expr) -> None:
        modifier = getattr(node, "modifier", None)
        if isinstance(node, promql_parser.AggregateExpr) and modifier is not None:
            wanted = set(modifier.labels)
        elif isinstance(node, promql_parser.BinaryExpr) and modifier is not None:
            wanted = set(modifier.matching.labels if modifier.matching else []) | set(modifier.group_labels or [])
        else:
            return
        if wanted - known:
            problems.append(f"{where}: groups or matches on {sorted(wanted - known)}, which no series in it carries")

    promql_parser.walk(expr, grouping)
    shown = set(LEGEND_LABEL.findall(legend or "")) | ({asked} if asked else set())
    if shown - known:
        problems.append(f"{where}: shows label {sorted(shown - known)}, which no series in it carries")
    return problems


def test_the_dashboard_is_a_grafana_model_every_panel_of_which_queries_prometheus(dashboard: dict[str, Any]) -> None:
    assert (dashboard["title"], dashboard["uid"]) == ("ModelOps", "modelops")
    assert dashboard["schemaVersion"] >= 39
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource" and variables["datasource"]["query"] == "prometheus"
    assert {"namespace", "model"} <= set(variables)
    found = list(panels(dashboard))
    assert found and len({p["id"] for p in found}) == len(found)
    for panel in found:
        assert panel["targets"], f"panel {panel['title']!r} has no target"
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, panel["title"]
        for target in panel["targets"]:
            assert target["expr"].strip(), f"panel {panel['title']!r} {target['refId']}: empty query"


def test_every_query_names_only_exported_metrics_and_labels(dashboard: dict[str, Any], series: Series) -> None:
    problems = [p for query in queries(dashboard) for p in check(*query, series)]
    assert not problems, "\n".join(problems)


def test_the_check_catches_an_unknown_metric_a_wrong_label_and_a_wrong_grouping(series: Series) -> None:
    assert check("t", "rate(modelops_request_total[$__rate_interval])", None, None, series)
    assert check("t", 'modelops_rollout_canary_weight{model="m"}', None, None, series)
    assert check("t", "sum by (kind) (rate(modelops_requests_total[5m]))", None, None, series)
    assert check("t", "modelops_monitor_drift_score", "{{deployment}}", None, series)
    assert not check("t", "sum by (kind) (rate(modelops_request_errors_total[5m]))", "{{kind}}", None, series)


def test_the_exported_names_come_from_the_code(series: Series) -> None:
    assert {"modelops_requests_total", "modelops_request_latency_seconds_bucket", "modelops_operator_info"} <= set(
        series
    )
    assert series["modelops_request_errors_total"] >= {"model", "version", "kind"}  # type: ignore[operator]
    assert "le" in series["modelops_request_latency_seconds_bucket"]  # type: ignore[operator]
    assert series["modelops_rollout_decisions_total"] >= {"namespace", "deployment", "decision"}  # type: ignore[operator]
