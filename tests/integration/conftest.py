"""The real local control plane: brought up once per session (or reused), CRDs installed,
and a namespace of its own for each test."""

from __future__ import annotations

import json
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from modelops.devcluster.cluster import Cluster, kubeconfig_path
from modelops.devcluster.install import install_api
from modelops.devcluster.objectstore import SECRET_NAME, ObjectStore
from modelops.devcluster.operator import Operator
from modelops.devcluster.toolchain import Toolchain, ensure_toolchain
from tests.conftest import ROOT, wait_until_answering

pytestmark = pytest.mark.integration


@dataclass
class Kubectl:
    """kubectl against the local cluster, in one namespace unless told otherwise."""

    tools: Toolchain
    namespace: str | None = None
    identity: tuple[str, ...] = ()

    def as_user(self, user: str, *groups: str) -> Kubectl:
        """The same kubectl, impersonating a user (and groups) so RBAC and admission policies apply to them."""
        return Kubectl(self.tools, self.namespace, (f"--as={user}", *(f"--as-group={g}" for g in groups)))

    def run(self, *args: str, stdin: str | None = None, check: bool = True) -> subprocess.CompletedProcess:
        ns = ["-n", self.namespace] if self.namespace else []
        done = subprocess.run(
            [str(self.tools.kubectl), f"--kubeconfig={kubeconfig_path()}", *self.identity, *ns, *args],
            input=stdin,
            capture_output=True,
            text=True,
            timeout=120,
        )
        if check and done.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)} failed:\n{done.stderr}")
        return done

    def apply(self, manifest: dict | str, *extra: str, check: bool = True) -> subprocess.CompletedProcess:
        text = manifest if isinstance(manifest, str) else json.dumps(manifest)
        return self.run("apply", "-f", "-", *extra, stdin=text, check=check)

    def get(self, *args: str) -> dict:
        return json.loads(self.run("get", *args, "-o", "json").stdout)


@pytest.fixture(scope="session")
def cluster() -> Iterator[Toolchain]:
    """The local control plane; stopped at the end only if this session started it."""
    tools = ensure_toolchain()
    local = Cluster()
    started = not local.running()
    local.up()
    yield tools
    if started:
        local.down()


@pytest.fixture(scope="session")
def image(cluster: Toolchain) -> str:
    """The project's image, built from the Dockerfile (cached by its inputs) and loaded into the real node."""
    from modelops.devcluster.images import project_image

    built = project_image(ROOT, log=lambda m: print(f"# {m}"))
    Cluster().import_image(built)
    return built.reference


APPROVERS = "modelops-approvers"


@pytest.fixture(scope="session")
def crds(cluster: Toolchain) -> Path:
    """Our CRDs, Established, with the chart's approval policy and approver role."""
    install_api(cluster, ROOT / "crds", ROOT / "charts" / "modelops")
    return ROOT / "crds"


class Store:
    """The dev cluster's S3 server as a test sees it: URIs in the namespace's own folder, and the bytes behind
    them, read and written from the host with the same keys the namespace's Secret holds."""

    def __init__(self, objects: ObjectStore) -> None:
        import s3fs

        self.objects = objects
        self.fs = s3fs.S3FileSystem(
            key=objects.access_key, secret=objects.secret_key, endpoint_url=objects.endpoint, use_listings_cache=False
        )

    def uri(self, *parts: str) -> str:
        return self.objects.uri(*parts)

    def read(self, uri: str) -> bytes:
        return self.fs.cat_file(uri)

    def write(self, uri: str, content: bytes) -> str:
        self.fs.pipe_file(uri, content)
        return uri

    def exists(self, uri: str) -> bool:
        return self.fs.exists(uri)

    def keep(self, result: dict, folder: str) -> dict:
        """A trainer's result made on the host, its files moved into the store: what a build in a pod leaves."""
        kept = dict(result)
        for key in ("artifactUri", "baselineUri"):
            local = Path(result[key].removeprefix("file://"))
            kept[key] = self.write(self.uri(folder, local.name), local.read_bytes())
        return kept


@pytest.fixture(scope="session")
def store(cluster: Toolchain) -> Store:
    return Store(Cluster().object_store())


#: The Secret every test namespace holds for the store (as a user's namespace would hold its store's keys).
STORAGE_SECRET = SECRET_NAME
RESTRICTED = "pod-security.kubernetes.io/enforce=restricted"


@pytest.fixture
def namespace(cluster: Toolchain, crds: Path, store: Store, request: pytest.FixtureRequest) -> Iterator[str]:
    """A fresh namespace for one test, enforcing Pod Security `restricted`, with the store's Secret; deleted
    afterwards."""
    name = f"t-{request.node.name[:40].lower().replace('_', '-').strip('-')}-{uuid.uuid4().hex[:5]}"
    name = "".join(c if c.isalnum() or c == "-" else "-" for c in name)
    kubectl = Kubectl(cluster)
    kubectl.run("create", "namespace", name)
    kubectl.run("label", "namespace", name, RESTRICTED)
    kubectl.apply(store.objects.secret_manifest(name))
    yield name
    kubectl.run("delete", "namespace", name, "--wait=false", check=False)


@pytest.fixture
def kubectl(cluster: Toolchain, namespace: str) -> Kubectl:
    return Kubectl(cluster, namespace)


@pytest.fixture(scope="session")
def operator_env(image: str) -> dict[str, str]:
    """What every operator the tests start is told: the runtime image its Jobs and servers run."""
    return {"MODELOPS_RUNTIME_IMAGE": image}


def allowing(request: pytest.FixtureRequest) -> dict[str, str]:
    """What the chart's administrator would allow the operator for this test: the Prometheus and the webhook
    receiver the test itself runs (ask for those fixtures before `operator`), and nothing else."""
    allowed = {}
    if "prometheus" in request.fixturenames:
        allowed["MODELOPS_PROMETHEUS_URLS"] = request.getfixturevalue("prometheus").url
    if "sink" in request.fixturenames:
        allowed["MODELOPS_WEBHOOK_URL_PREFIXES"] = request.getfixturevalue("sink").prefix
    return allowed


@pytest.fixture
def operator(
    namespace: str, operator_env: dict[str, str], tmp_path: Path, request: pytest.FixtureRequest
) -> Iterator[Operator]:
    env = {**operator_env, **allowing(request)}
    running = Operator(tmp_path / "operator.log", namespaces=[namespace], env=env).start()
    yield running
    running.stop()
    if request.node.rep_call.failed if hasattr(request.node, "rep_call") else False:
        print(running.log()[-5000:])


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Tests that restart the cluster go last: nothing after them needs what the session installed."""
    items.sort(key=lambda item: item.get_closest_marker("restarts_cluster") is not None)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> Iterator[None]:
    """Keep each phase's report on the test item, so fixtures can print logs of failed tests."""
    outcome = yield
    report = outcome.get_result()
    setattr(item, f"rep_{report.when}", report)


@pytest.fixture(scope="module")
def forest(tmp_path_factory: pytest.TempPathFactory, store: Store) -> dict:
    """A trained breast-cancer forest's result (artifact and digest in the store, baseline, metrics), to record as
    a version."""
    from tests.unit.test_trainer import train_bundled

    trained = train_bundled(
        tmp_path_factory.mktemp("forest"),
        "breast_cancer",
        "sklearn.ensemble.RandomForestClassifier",
        {"n_estimators": 10},
    )
    return store.keep(trained, f"shared/forest-{uuid.uuid4().hex[:6]}")


class Prometheus:
    """Debian's Prometheus, scraping the targets a test names (file-based discovery, 1 s interval)."""

    def __init__(self, folder: Path) -> None:
        import shutil

        from modelops.devcluster.cluster import free_port

        binary = shutil.which("prometheus")
        assert binary, "Prometheus is missing: `make test` installs Debian's prometheus package"
        self.targets = folder / "targets.json"
        self.set_targets([])
        config = folder / "prometheus.yml"
        config.write_text(
            json.dumps(
                {
                    "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
                    "scrape_configs": [
                        {
                            "job_name": "modelops",
                            "file_sd_configs": [{"files": [str(self.targets)], "refresh_interval": "1s"}],
                        }
                    ],
                }
            )
        )
        self.url = f"http://127.0.0.1:{free_port()}"
        self.log = open(folder / "prometheus.log", "wb")  # noqa: SIM115 (closed in stop)
        self.process = subprocess.Popen(
            [
                binary,
                f"--config.file={config}",
                f"--storage.tsdb.path={folder / 'data'}",
                f"--web.listen-address={self.url.removeprefix('http://')}",
            ],
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )

    def set_targets(self, addresses: list[str], namespace: str = "") -> None:
        """Scrape these pods, labelling their series with their namespace, as Prometheus' Kubernetes discovery does."""
        self.targets.write_text(json.dumps([{"targets": addresses, "labels": {"namespace": namespace}}]))

    def wait_ready(self) -> None:
        wait_until_answering(f"{self.url}/-/ready", self.process, Path(self.log.name))

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=30)
        self.log.close()


@pytest.fixture
def prometheus(tmp_path: Path) -> Iterator[Prometheus]:
    server = Prometheus(tmp_path)
    server.wait_ready()
    yield server
    server.stop()
