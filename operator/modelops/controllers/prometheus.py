"""Instant queries to a Prometheus server, for measurements taken there instead of from the pods. Only servers the
administrator allows are queried (the callers check), and each query selects one namespace's series."""

from __future__ import annotations

import json

import httpx

from modelops.resources.measure import Scope, ServingTotals, prometheus_queries, totals_from_prometheus

from . import http


def query_totals(url: str, scope: Scope, window: str | None = None) -> ServingTotals:
    answers = {}
    for key, query in prometheus_queries(scope, window).items():
        try:
            reply = http.get_text(f"{url.rstrip('/')}/api/v1/query", params={"query": query})
            answers[key] = json.loads(reply)["data"]["result"]
        except (httpx.HTTPError, ValueError, KeyError, TypeError) as error:
            return ServingTotals(problem=f"cannot query Prometheus at {url}: {type(error).__name__}")
    return totals_from_prometheus(answers)
