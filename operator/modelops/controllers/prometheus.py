"""Instant queries to a Prometheus server, for measurements taken there instead of from the pods."""

from __future__ import annotations

import httpx

from modelops.resources.measure import ServingTotals, prometheus_queries, totals_from_prometheus


def query_totals(url: str, model: str, version: str, window: str | None = None) -> ServingTotals:
    answers = {}
    for key, query in prometheus_queries(model, version, window).items():
        try:
            reply = httpx.get(f"{url.rstrip('/')}/api/v1/query", params={"query": query}, timeout=5)
            answers[key] = reply.json()["data"]["result"]
        except (httpx.HTTPError, ValueError, KeyError) as error:
            return ServingTotals(problem=f"cannot query Prometheus at {url}: {type(error).__name__}")
    return totals_from_prometheus(answers)
