"""Our model server against plain BentoML services of the same model, side by side in one run: requests per second
and latency (p50, p99) at 1, 16 and 64 connections, one record per request.

- ours: `modelops serve` as a pod runs it (fetches and verifies the model file, then BentoML), with its defaults:
  one worker per CPU, adaptive batching, telemetry (feature and prediction histograms, quality counts) and the
  answers kept for labels (`spec.feedback`) on;
- plain_same: a plain BentoML service of the same model with the same workers and batching (a `batchable` API
  doing `predict_proba`), no validation and no telemetry: what the server costs beyond the model;
- plain_default: what a user writes first: one `@bentoml.api def predict` calling `model.predict`, BentoML's defaults;
- limit: records per second of `predict_proba` on large batches in-process, one process per CPU: the hardware's pace.

The model is the example build's (examples/01-modelbuild.yaml: a 50-tree random forest on breast_cancer, calibrated),
trained by `modelops train`. The three servers run side by side on 127.0.0.1 and take turns under load, round after
round (each figure is a server's median round); the load comes from vegeta (compiled, so that the client does not
eat the CPUs it measures), installed on first use into ~/.cache/modelops with `go install`.

Run: .venv/bin/python bench/serving.py [--seconds 5] [--rounds 3]   (about 3 minutes with the defaults)
"""

from __future__ import annotations

import argparse
import base64
import json
import multiprocessing
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import bentoml
import pandas as pd

HERE = Path(__file__).resolve().parent
VEGETA_VERSION = "v12.13.0"
CONNECTIONS = (1, 16, 64)
#: What the plain services are told by the bench (read when BentoML imports this file to serve them).
MODEL_TAG_ENV = "BENCH_MODEL_TAG"
WORKERS_ENV = "BENCH_WORKERS"
MAX_BATCH_SIZE_ENV = "BENCH_MAX_BATCH_SIZE"
MAX_LATENCY_MS_ENV = "BENCH_MAX_LATENCY_MS"
#: The example build's trainer, as `modelops train` gets it from the operator.
TRAINING = {
    "build": "bench",
    "namespace": "bench",
    "model": "breast-cancer",
    "task": "classification",
    "datasetUri": "sklearn://breast_cancer",
    "target": "target",
    "estimator": "sklearn.ensemble.RandomForestClassifier",
    "params": {"n_estimators": 50, "max_depth": 6},
}


@bentoml.service(name="plain-same", traffic={"timeout": 60}, workers=int(os.environ.get(WORKERS_ENV) or 1))
class PlainSame:
    def __init__(self) -> None:
        self.model = bentoml.sklearn.load_model(os.environ[MODEL_TAG_ENV])

    @bentoml.api(
        route="/predict",
        batchable=True,
        max_batch_size=int(os.environ.get(MAX_BATCH_SIZE_ENV) or 64),
        max_latency_ms=int(os.environ.get(MAX_LATENCY_MS_ENV) or 10_000),
    )
    def predict(self, records: list[dict[str, Any]]) -> list[dict[str, Any]]:
        probabilities = self.model.predict_proba(pd.DataFrame.from_records(records))
        predictions = self.model.classes_[probabilities.argmax(axis=1)].tolist()
        rounded = probabilities.round(6).tolist()
        return [{"prediction": p, "probabilities": r} for p, r in zip(predictions, rounded, strict=True)]


@bentoml.service(name="plain-default")
class PlainDefault:
    def __init__(self) -> None:
        self.model = bentoml.sklearn.load_model(os.environ[MODEL_TAG_ENV])

    @bentoml.api
    def predict(self, records: list[dict[str, Any]]) -> dict[str, Any]:
        return {"predictions": self.model.predict(pd.DataFrame.from_records(records)).tolist()}


def vegeta() -> Path:
    from modelops.devcluster.toolchain import cache_root

    folder = cache_root() / f"vegeta-{VEGETA_VERSION}"
    binary = folder / "vegeta"
    if not binary.exists():
        print(f"installing vegeta {VEGETA_VERSION} into {folder} (once)", flush=True)
        env = {**os.environ, "GOBIN": str(folder), "CGO_ENABLED": "0"}
        subprocess.run(["go", "install", f"github.com/tsenart/vegeta/v12@{VEGETA_VERSION}"], check=True, env=env)
    return binary


def train(folder: Path) -> dict[str, Any]:
    """The example build's model, trained by `modelops train` as its Job would; returns the trainer's result."""
    from modelops.contract.training import CONFIG_FILE_ENV, TERMINATION_LOG_ENV, TrainResult

    config = folder / "train.json"
    config.write_text(json.dumps({**TRAINING, "artifactsFolder": f"file://{folder}/artifacts"}))
    termination = folder / "termination-log"
    env = {**os.environ, CONFIG_FILE_ENV: str(config), TERMINATION_LOG_ENV: str(termination)}
    subprocess.run(
        [sys.executable, "-m", "modelops.cli", "train"], env=env, check=True, capture_output=True, timeout=600
    )
    return TrainResult.from_message(termination.read_text()).model_dump(by_alias=True)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextmanager
def running(command: list[str], env: dict[str, str], log: Path, cwd: Path | None = None) -> Iterator[str]:
    """A server on 127.0.0.1, ready; yields its base URL."""
    import httpx

    port = free_port()
    with log.open("wb") as out:
        process = subprocess.Popen(
            [*command, "--port", str(port)], env=env, cwd=cwd, stdout=out, stderr=subprocess.STDOUT
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"the server stopped: {log.read_text()[-2000:]}")
            try:
                if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"the server did not get ready: {log.read_text()[-2000:]}")
            time.sleep(0.5)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=30)


def load(url: str, bodies: list[bytes], connections: int, seconds: float, folder: Path) -> dict[str, float]:
    """Closed-loop load: `connections` callers, each sending its next request when the last is answered."""
    targets = folder / "targets.json"
    with targets.open("w") as out:
        for body in bodies:
            target = {
                "method": "POST",
                "url": f"{url}/predict",
                "header": {"Content-Type": ["application/json"]},
                "body": base64.b64encode(body).decode(),
            }
            out.write(json.dumps(target) + "\n")
    attack = subprocess.run(
        [
            str(vegeta()),
            "attack",
            "-format=json",
            f"-targets={targets}",
            "-rate=0",
            f"-workers={connections}",
            f"-max-workers={connections}",
            f"-duration={seconds}s",
            "-timeout=60s",
        ],
        check=True,
        capture_output=True,
    )
    report = subprocess.run(
        [str(vegeta()), "report", "-type=json"], input=attack.stdout, check=True, capture_output=True
    )
    measured = json.loads(report.stdout)
    return {
        "rps": measured["throughput"],
        "p50_ms": measured["latencies"]["50th"] / 1e6,
        "p99_ms": measured["latencies"]["99th"] / 1e6,
        "success": measured["success"],
    }


def measure(
    urls: dict[str, str], bodies: list[bytes], seconds: float, rounds: int, folder: Path
) -> dict[str, dict[int, dict[str, float]]]:
    """Each server's median round at each number of connections; the servers take turns, round after round, so
    that whatever else the machine does falls on all of them alike."""
    for url in urls.values():
        load(url, bodies, 16, 2, folder)  # warm up: imports, caches, the batching dispatcher's training
    runs: dict[str, dict[int, list[dict[str, float]]]] = {name: {c: [] for c in CONNECTIONS} for name in urls}
    for connections in CONNECTIONS:
        for _ in range(rounds):
            for name, url in urls.items():
                runs[name][connections].append(load(url, bodies, connections, seconds, folder))
    return {
        name: {c: sorted(measured, key=lambda run: run["rps"])[len(measured) // 2] for c, measured in by.items()}
        for name, by in runs.items()
    }


def _predict_rate(tag: str, frame: pd.DataFrame, seconds: float, rates: Any) -> None:
    model = bentoml.sklearn.load_model(tag)
    model.predict_proba(frame.head(100))
    records, started = 0, time.perf_counter()
    while time.perf_counter() - started < seconds:
        model.predict_proba(frame)
        records += len(frame)
    rates.put(records / (time.perf_counter() - started))


def limit(tag: str, frame: pd.DataFrame, processes: int, seconds: float) -> float:
    """Records per second of `predict_proba` on batches of `frame`, in `processes` processes at once."""
    context = multiprocessing.get_context("fork")
    rates = context.Queue()
    workers = [context.Process(target=_predict_rate, args=(tag, frame, seconds, rates)) for _ in range(processes)]
    for worker in workers:
        worker.start()
    total = sum(rates.get() for _ in workers)
    for worker in workers:
        worker.join()
    return float(total)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5, help="How long each load runs.")
    parser.add_argument("--rounds", type=int, default=3, help="Loads per server and number of connections.")
    arguments = parser.parse_args()
    seconds, rounds = arguments.seconds, arguments.rounds

    from sklearn.datasets import load_breast_cancer

    from modelops.contract.serving import DEFAULT_MAX_BATCH_SIZE, DEFAULT_MAX_LATENCY_MS
    from modelops.runtime.serve import fetch, pod_cpus

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        os.environ["BENTOML_HOME"] = str(folder / "bentoml")
        os.environ["BENTOML_DO_NOT_TRACK"] = "true"
        vegeta()
        print("training the example build's model with `modelops train` ...", flush=True)
        result = train(folder)
        tag = str(fetch(result["artifactUri"], result["artifactDigest"]).tag)
        cpus = pod_cpus()
        features = load_breast_cancer(as_frame=True).frame.drop(columns=["target"])
        bodies = [json.dumps({"records": [row]}).encode() for row in features.to_dict(orient="records")]

        env = {**os.environ, MODEL_TAG_ENV: tag}
        ours_env = {
            **env,
            "MODELOPS_MODEL_URI": result["artifactUri"],
            "MODELOPS_MODEL_DIGEST": result["artifactDigest"],
            "MODELOPS_MODEL": "breast-cancer",
            "MODELOPS_MODEL_VERSION": "1",
            "MODELOPS_BIND_HOST": "127.0.0.1",
            # labels are taken unless a deployment turns them off: each answer is kept for 24 h (spec.feedback)
            "MODELOPS_FEEDBACK_RETENTION_SECONDS": "86400",
            "MODELOPS_FEEDBACK_CAPACITY": "100000",
            "MODELOPS_FEEDBACK_STORE": str(folder / "answers.sqlite3"),
        }
        same_env = {
            **env,
            WORKERS_ENV: str(cpus),
            MAX_BATCH_SIZE_ENV: str(DEFAULT_MAX_BATCH_SIZE),
            MAX_LATENCY_MS_ENV: str(DEFAULT_MAX_LATENCY_MS),
        }
        bentoml_cli = str(Path(sys.executable).parent / "bentoml")
        servers = {
            "ours": ([sys.executable, "-m", "modelops.cli", "serve"], ours_env, None),
            "plain_same": ([bentoml_cli, "serve", "serving:PlainSame", "--host", "127.0.0.1"], same_env, HERE),
            "plain_default": ([bentoml_cli, "serve", "serving:PlainDefault", "--host", "127.0.0.1"], env, HERE),
        }
        with ExitStack() as stack:
            urls = {
                name: stack.enter_context(running(command, server_env, folder / f"{name}.log", cwd))
                for name, (command, server_env, cwd) in servers.items()
            }
            print(
                f"measuring {', '.join(urls)}: {rounds} rounds of {seconds:g} s at {CONNECTIONS} connections",
                flush=True,
            )
            results = measure(urls, bodies, seconds, rounds, folder)
        big = features.sample(20_000, replace=True, random_state=0).reset_index(drop=True)
        limit_rps = limit(tag, big, cpus, seconds)

    print(
        f"\n{cpus} CPUs, {cpus} workers, batches of at most {DEFAULT_MAX_BATCH_SIZE} requests; one record per "
        f"request, median of {rounds} loads of {seconds:g} s; limit: predict_proba on 20,000-record batches, "
        f"{cpus} processes"
    )
    print(
        f"{'connections':>11} {'server':<14} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'ok':>6} "
        f"{'ours/this':>10} {'this/limit':>11}"
    )
    for connections in CONNECTIONS:
        ours = results["ours"][connections]["rps"]
        for name, measured in results.items():
            row = measured[connections]
            print(
                f"{connections:>11} {name:<14} {row['rps']:>8.1f} {row['p50_ms']:>8.1f} {row['p99_ms']:>8.1f} "
                f"{row['success']:>6.0%} {ours / row['rps']:>10.2f} {row['rps'] / limit_rps:>11.3%}"
            )
    print(f"{'':>11} {'limit':<14} {limit_rps:>8.0f} records/s")
    print(
        json.dumps(
            {
                "connections": 16,
                "ours_rps": round(results["ours"][16]["rps"], 1),
                "plain_same_rps": round(results["plain_same"][16]["rps"], 1),
                "plain_default_rps": round(results["plain_default"][16]["rps"], 1),
                "limit_rps": round(limit_rps, 1),
            }
        )
    )


if __name__ == "__main__":
    main()
