"""Argo CD health checks of the four kinds, run the way Argo CD runs them.

Each kind has `charts/modelops/argocd/modelops.io/<Kind>/` in Argo CD's resource_customizations layout:
`health.lua`, `health_test.yaml` and `testdata/`. Every case of every `health_test.yaml` runs here in Lua 5.1
(Argo CD's gopher-lua has 5.1 semantics) with what Argo CD gives a check installed through argocd-cm: the object
as the global `obj`, the base and table libraries (not string or math: `useOpenLibs` is off unless set), and the
chunk's return value as the health. The fixtures are validated with the API's models, so they cannot drift from it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import lupa.lua51
import pytest
import yaml

from modelops.api.v1alpha1 import API_VERSION, GROUP, KINDS, CustomResource
from tests.support.paths import ROOT

CHECKS = ROOT / "charts" / "modelops" / "argocd" / GROUP
MODELS: dict[str, type[CustomResource]] = {kind.crd.kind: kind for kind in KINDS}
HEALTH_STATUSES = {"Healthy", "Progressing", "Degraded", "Suspended", "Missing", "Unknown"}

#: Argo CD opens base, table, package and a safe part of os only; the checks need none but base and table,
#: so everything else goes, with lupa's `python` bridge first of all.
SANDBOX = """
getmetatable("").__index = nil
for _, name in ipairs({"python", "string", "math", "io", "os", "debug", "coroutine", "package", "require",
                       "module", "dofile", "loadfile"}) do
  _G[name] = nil
end
"""


@dataclass(frozen=True)
class Case:
    """One test of a kind's health_test.yaml."""

    kind: str
    input_path: str
    status: str
    message: str

    @property
    def id(self) -> str:
        return f"{self.kind}-{Path(self.input_path).stem}"

    def obj(self) -> dict[str, Any]:
        return yaml.safe_load((CHECKS / self.kind / self.input_path).read_text())


def _cases() -> list[Case]:
    return [
        Case(folder.name, test["inputPath"], test["healthStatus"]["status"], test["healthStatus"].get("message", ""))
        for folder in sorted(p for p in CHECKS.iterdir() if p.is_dir())
        for test in yaml.safe_load((folder / "health_test.yaml").read_text())["tests"]
    ]


CASES = _cases()


def to_lua(lua: lupa.lua51.LuaRuntime, value: Any) -> Any:
    """The object as gopher-lua gets it: maps become tables, lists 1-based tables, scalars stay scalars."""
    if isinstance(value, dict):
        assert all(isinstance(key, str) for key in value), f"non-string key in {value}"
        return lua.table_from({key: to_lua(lua, item) for key, item in value.items()})
    if isinstance(value, list):
        return lua.table_from([to_lua(lua, item) for item in value])
    if value is None or isinstance(value, bool | int | float | str):
        return value
    raise TypeError(f"{value!r} is not JSON: quote timestamps in fixtures, as kubectl does")


def run_health_check(script: str, obj: dict[str, Any]) -> dict[str, Any]:
    """What Argo CD does: a fresh state, `obj` set, the script run, its return value read as a table."""
    lua = lupa.lua51.LuaRuntime(register_eval=False, register_builtins=False, unpack_returned_tuples=False)
    lua.execute(SANDBOX)
    lua.globals().obj = to_lua(lua, obj)
    result = lua.execute(script)
    assert lupa.lua51.lua_type(result) == "table", f"the script returned {result!r}, not a table"
    return dict(result.items())


def _observed_generation(status: dict[str, Any]) -> int:
    """The newest generation the operator reported, in status or in the Ready condition (as the scripts read it)."""
    ready = next((c for c in status.get("conditions") or [] if c.get("type") == "Ready"), {})
    return max(status.get("observedGeneration") or 0, ready.get("observedGeneration") or 0)


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.id)
def test_health(case: Case) -> None:
    script = (CHECKS / case.kind / "health.lua").read_text()
    health = run_health_check(script, case.obj())
    assert health.get("status") in HEALTH_STATUSES, f"Argo CD would report Unknown for {health}"
    assert health == {"status": case.status, "message": case.message}


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.id)
def test_fixture_is_a_valid_object_of_its_kind(case: Case) -> None:
    """Spec and status read by the API's models give back exactly the fixture: no unknown, misspelled or
    mistyped field (models ignore unknown fields, so a round trip is what catches them)."""
    obj = case.obj()
    assert (obj["apiVersion"], obj["kind"]) == (API_VERSION, case.kind)
    resource = MODELS[case.kind].model_validate(obj)
    assert resource.spec.model_dump(by_alias=True, exclude_unset=True, mode="json") == obj["spec"]
    if "status" in obj:
        assert resource.status is not None
        assert resource.status.model_dump(by_alias=True, exclude_unset=True, mode="json") == obj["status"]


def test_every_kind_has_a_health_check() -> None:
    crds = [
        doc
        for path in sorted((ROOT / "crds").glob("*.yaml"))
        for doc in yaml.safe_load_all(path.read_text())
        if doc and doc.get("kind") == "CustomResourceDefinition" and doc["spec"]["group"] == GROUP
    ]
    kinds = {crd["spec"]["names"]["kind"] for crd in crds}
    assert kinds == set(MODELS), "crds/ and the models disagree: run `make crds`"
    assert {p.name for p in CHECKS.iterdir() if p.is_dir()} == kinds
    for kind in kinds:
        assert (CHECKS / kind / "health.lua").is_file(), kind
        assert (CHECKS / kind / "health_test.yaml").is_file(), kind


@pytest.mark.parametrize("kind", sorted(MODELS))
def test_health_test_is_argo_cds_format_and_uses_every_fixture(kind: str) -> None:
    tests = yaml.safe_load((CHECKS / kind / "health_test.yaml").read_text())
    assert set(tests) == {"tests"}
    for test in tests["tests"]:
        assert set(test) == {"healthStatus", "inputPath"}, test
        assert set(test["healthStatus"]) <= {"status", "message"}, test
        assert test["healthStatus"]["status"] in HEALTH_STATUSES, test
    paths = [test["inputPath"] for test in tests["tests"]]
    assert len(paths) == len(set(paths)), "a fixture is tested twice"
    on_disk = {p.relative_to(CHECKS / kind).as_posix() for p in (CHECKS / kind / "testdata").rglob("*") if p.is_file()}
    assert on_disk == set(paths), "every file in testdata is a test's inputPath, and every inputPath exists"


@pytest.mark.parametrize("kind", sorted(MODELS))
def test_cases_cover_every_state(kind: str) -> None:
    """Healthy, Progressing and Degraded objects, one not observed yet, and one being deleted; the last two
    answer exactly what the shared prelude promises."""
    seen: set[str] = set()
    for case in (c for c in CASES if c.kind == kind):
        obj = case.obj()
        metadata = obj["metadata"]
        if metadata.get("deletionTimestamp"):
            seen.add("deleting")
            assert (case.status, case.message) == ("Progressing", "Pending deletion"), case.id
        elif _observed_generation(obj.get("status") or {}) < metadata["generation"]:
            seen.add("stale generation")
            expected = f"Waiting for the operator to observe generation {metadata['generation']}"
            assert (case.status, case.message) == ("Progressing", expected), case.id
        else:
            seen.add(case.status)
    assert {"Healthy", "Progressing", "Degraded", "stale generation", "deleting"} <= seen


def test_sandbox_is_as_bare_as_argo_cds() -> None:
    """What Argo CD does not give a check fails here too: Python, the string and math libraries, string methods."""
    bare = run_health_check("return {status = tostring(python or string or math or os or io)}", {})
    assert bare == {"status": "nil"}
    with pytest.raises(lupa.lua51.LuaError):
        run_health_check('return {status = ("x"):upper()}', {})
