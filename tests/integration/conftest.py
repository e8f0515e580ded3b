"""The real local control plane: brought up once per session (or reused), CRDs installed,
and a namespace of its own for each test."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from modelops.devcluster.cluster import Cluster
from modelops.devcluster.install import install_api
from modelops.devcluster.toolchain import Toolchain, ensure_toolchain
from tests.support.kube import RESTRICTED, Kubectl
from tests.support.operator import Operator, allowed_by_administrator, operator_environment
from tests.support.paths import ROOT
from tests.support.prometheus import Prometheus
from tests.support.storage import Store

pytestmark = pytest.mark.integration


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


@pytest.fixture(scope="session")
def crds(cluster: Toolchain) -> Path:
    """Our CRDs, Established, with the chart's approval policy and approver role."""
    install_api(cluster, ROOT / "crds", ROOT / "charts" / "modelops")
    return ROOT / "crds"


@pytest.fixture(scope="session")
def store(cluster: Toolchain) -> Store:
    return Store(Cluster().object_store())


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
    return operator_environment(image)


@pytest.fixture
def operator(
    namespace: str, operator_env: dict[str, str], tmp_path: Path, request: pytest.FixtureRequest
) -> Iterator[Operator]:
    env = {**operator_env, **allowed_by_administrator(request)}
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
    from tests.support.training import train_bundled

    trained = train_bundled(
        tmp_path_factory.mktemp("forest"),
        "breast_cancer",
        "sklearn.ensemble.RandomForestClassifier",
        {"n_estimators": 10},
    )
    return store.keep(trained, f"shared/forest-{uuid.uuid4().hex[:6]}")


@pytest.fixture
def audit_log(store: Store) -> dict[str, str]:
    """Where the operator keeps this test's audit trail (a folder of its own in the dev store), and the keys to it:
    the environment the chart gives the operator from `audit.uri` and `audit.credentialsSecret`."""
    return {"MODELOPS_AUDIT_URI": store.uri("audit", uuid.uuid4().hex[:8]), **store.objects.env()}


@pytest.fixture
def prometheus(tmp_path: Path) -> Iterator[Prometheus]:
    server = Prometheus(tmp_path)
    server.wait_ready()
    yield server
    server.stop()
