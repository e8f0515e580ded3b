"""Images without a registry: the pause image, a Python base from Debian's packages, and the project's image
built from its Dockerfile by buildah. Each is cached as an OCI archive named by the hash of its inputs, so a
second build of the same inputs costs nothing; the node's containerd imports the archives.

A user with Docker and a registry builds the same Dockerfile unchanged: it only takes the base as a build
argument (`BASE`, default `python:3.11-slim`).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from .toolchain import ToolchainError, build_lock, cache_root

#: Images built here are named under `localhost/`: the kubelet looks them up as they are, and no registry is asked.
PAUSE_REFERENCE = "localhost/modelops-pause:3.10"
IMAGE_NAME = "localhost/modelops"

#: Python 3.11 and what the Dockerfile's steps run (`sh`, `rm`; `python3 -m venv` for the build stage's uv).
BASE_PACKAGES = (
    "python3.11-minimal",
    "libpython3.11-stdlib",
    "python3.11-venv",
    "dash",
    "coreutils",
    "libstdc++6",
    "ca-certificates",
)
#: In the closure, but nothing in the image runs them: a package manager, perl, and what only maintainer
#: scripts use (they never run: packages are unpacked, not installed).
LEFT_OUT = {
    "dpkg",
    "tar",
    "install-info",
    "debconf",
    "cdebconf",
    "libdebian-installer4",
    "libnewt0.52",
    "libslang2",
    "libtextwrap1",
    "perl",
    "perl-base",
    "perl-modules-5.36",
    "libperl5.36",
    "mailcap",
    "mime-support",
    "openssl",
}
NONROOT = 65532

PAUSE_C = r"""
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>
static void quit(int sig) { (void)sig; _exit(0); }
static void reap(int sig) { (void)sig; while (waitpid(-1, 0, WNOHANG) > 0) {} }
int main(void) {
    signal(SIGINT, quit);
    signal(SIGTERM, quit);
    signal(SIGCHLD, reap);
    for (;;) pause();
}
"""


@dataclass(frozen=True)
class Image:
    """An image the node can run: the reference pods name, and the OCI archive containerd imports."""

    reference: str
    archive: Path


def images_dir() -> Path:
    return cache_root() / "images"


def _run(args: list[str], *, cwd: Path | None = None, env: dict[str, str] | None = None) -> str:
    done = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise ToolchainError(f"`{' '.join(args[:4])} …` failed:\n{done.stderr[-4000:]}")
    return done.stdout


def _need(*commands: str) -> None:
    missing = [c for c in commands if shutil.which(c) is None]
    if missing:
        raise ToolchainError(
            f"{', '.join(missing)} not found: the node's images are built with Debian's buildah and gcc "
            "(`make node-packages` installs them)"
        )


class Buildah:
    """buildah with storage of its own under the cache, so the host's containers storage is never touched."""

    def __init__(self) -> None:
        _need("buildah")
        self.root = cache_root() / "buildah"
        policy = self.root / "policy.json"
        if not policy.exists():
            policy.parent.mkdir(parents=True, exist_ok=True)
            policy.write_text('{"default": [{"type": "insecureAcceptAnything"}]}\n')
        self.auth = self.root / "auth.json"
        if not self.auth.exists():
            self.auth.write_text("{}\n")
            self.auth.chmod(0o600)
        self.flags = [
            f"--root={self.root / 'storage'}",
            f"--runroot={self.root / 'run'}",
            "--storage-driver=overlay",
        ]
        self.policy = policy

    def __call__(self, *args: str, cwd: Path | None = None) -> str:
        env = {**os.environ, "BUILDAH_ISOLATION": "chroot", "REGISTRY_AUTH_FILE": str(self.auth)}
        return _run(["buildah", *self.flags, *args], cwd=cwd, env=env).strip()

    def has(self, reference: str) -> bool:
        try:
            self("inspect", "--type", "image", reference)
        except ToolchainError:
            return False
        return True

    def commit_folder(self, folder: Path, reference: str, config: Iterable[str]) -> None:
        """One layer holding `folder` as the root filesystem."""
        container = self("from", "--signature-policy", str(self.policy), "scratch")
        try:
            self("copy", container, f"{folder}/.", "/")
            self("config", *config, container)
            self("commit", "--signature-policy", str(self.policy), "--rm", container, reference)
        except ToolchainError:
            self("rm", container)
            raise

    def push_archive(self, image: Image) -> None:
        partial = image.archive.with_suffix(".partial")
        partial.unlink(missing_ok=True)
        self(
            "push",
            "--signature-policy",
            str(self.policy),
            image.reference,
            f"oci-archive:{partial}:{image.reference}",
        )
        partial.rename(image.archive)


def _digest(parts: Iterable[bytes]) -> str:
    hasher = hashlib.sha256()
    for part in parts:
        hasher.update(hashlib.sha256(part).digest())
    return hasher.hexdigest()[:16]


def pause_image(log: Callable[[str], None] = print) -> Image:
    """The sandbox image: a static C program that waits for a signal and reaps children."""
    key = _digest([PAUSE_C.encode(), PAUSE_REFERENCE.encode()])
    image = Image(PAUSE_REFERENCE, images_dir() / f"pause-{key}.tar")
    with build_lock("image-pause"):
        if image.archive.exists():
            return image
        _need("gcc", "buildah")
        log("building the pause image")
        images_dir().mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=cache_root()) as tmp:
            work = Path(tmp)
            (work / "pause.c").write_text(PAUSE_C)
            (work / "root").mkdir()
            _run(["gcc", "-static", "-Os", "-o", str(work / "root" / "pause"), str(work / "pause.c")])
            buildah = Buildah()
            buildah.commit_folder(work / "root", PAUSE_REFERENCE, ["--entrypoint", '["/pause"]', "--user", "65535"])
            buildah.push_archive(image)
    return image


def _forget_older_builds(buildah: Buildah, kept: Image) -> None:
    """Each change of the sources builds a new image of about 600 MB: keep only the newest (its layers stay cached)."""
    for archive in images_dir().glob("modelops-*.tar"):
        if archive != kept.archive:
            archive.unlink(missing_ok=True)
    listed = buildah("images", "--format", "{{.Name}}:{{.Tag}}")
    for reference in listed.splitlines():
        if reference.startswith(f"{IMAGE_NAME}:dev-") and reference != kept.reference:
            with contextlib.suppress(ToolchainError):
                buildah("rmi", reference)


def debian_closure(packages: Iterable[str]) -> list[str]:
    """The packages and every package they depend on, as `name=version`, without what `LEFT_OUT` names."""
    listed = _run(
        [
            "apt-cache",
            "depends",
            "--recurse",
            "--no-recommends",
            "--no-suggests",
            "--no-conflicts",
            "--no-breaks",
            "--no-replaces",
            "--no-enhances",
            *packages,
        ]
    )
    names = sorted({line for line in listed.splitlines() if line and not line.startswith((" ", "<"))} - LEFT_OUT)
    policy = _run(["apt-cache", "policy", *names])
    versions: dict[str, str] = {}
    current = ""
    for line in policy.splitlines():
        if not line.startswith(" "):
            current = line.rstrip(":")
        elif line.strip().startswith("Candidate:"):
            versions[current] = line.split(":", 1)[1].strip()
    unknown = [name for name in names if versions.get(name, "(none)") == "(none)"]
    if unknown:
        raise ToolchainError(f"apt knows no candidate for {', '.join(unknown)}: run `apt-get update` and try again")
    return [f"{name}={versions[name]}" for name in names]


def _unpack_base(packages: list[str], root: Path) -> None:
    debs = images_dir() / "debs"
    debs.mkdir(parents=True, exist_ok=True)

    def downloaded(package: str) -> list[Path]:
        name, version = package.split("=")
        return sorted(debs.glob(f"{name}_{version.replace(':', '%3a')}_*.deb"))

    wanted = [p for p in packages if not downloaded(p)]
    if wanted:
        _run(["apt-get", "download", "-q", *wanted], cwd=debs)
    for package in packages:
        if not downloaded(package):
            raise ToolchainError(f"apt-get download left no {package} in {debs}")
        _run(["dpkg-deb", "-x", str(downloaded(package)[0]), str(root)])
    (root / "usr/bin/python3").unlink(missing_ok=True)
    (root / "usr/bin/python3").symlink_to("python3.11")
    (root / "bin/sh").unlink(missing_ok=True)
    (root / "bin/sh").symlink_to("dash")
    certificates = root / "etc/ssl/certs"
    certificates.mkdir(parents=True, exist_ok=True)
    bundle = b"".join(p.read_bytes() for p in sorted((root / "usr/share/ca-certificates").rglob("*.crt")))
    (certificates / "ca-certificates.crt").write_bytes(bundle)
    (root / "etc/passwd").write_text(f"root:x:0:0:root:/root:/bin/sh\nnonroot:x:{NONROOT}:{NONROOT}::/tmp:/bin/sh\n")
    (root / "etc/group").write_text(f"root:x:0:\nnonroot:x:{NONROOT}:\n")
    for folder in ("tmp", "root", "opt"):
        (root / folder).mkdir(exist_ok=True)
    (root / "tmp").chmod(0o1777)


def base_image(log: Callable[[str], None] = print) -> str:
    """Debian's Python 3.11 as an image in buildah's storage; returns the reference the Dockerfile's `BASE` takes."""
    packages = debian_closure(BASE_PACKAGES)
    reference = f"localhost/modelops-base:{_digest(p.encode() for p in packages)}"
    with build_lock("image-base"):
        buildah = Buildah()
        if buildah.has(reference):
            return reference
        log(f"assembling a Python base image from {len(packages)} Debian packages")
        with tempfile.TemporaryDirectory(dir=cache_root()) as tmp:
            root = Path(tmp) / "root"
            root.mkdir()
            _unpack_base(packages, root)
            buildah.commit_folder(root, reference, ["--cmd", '["python3"]'])
    return reference


#: What the Dockerfile copies into the image: the image's name carries their hash.
IMAGE_INPUTS = ("Dockerfile", "scripts/image-venv.sh", "requirements-image.lock", "pyproject.toml", "README.md")


def source_root() -> Path:
    """The checkout the package runs from (an editable install): where the Dockerfile is."""
    root = Path(__file__).resolve().parents[3]
    if not (root / "Dockerfile").is_file():
        raise ToolchainError(f"no Dockerfile in {root}: the image is built from a checkout of the project")
    return root


def project_inputs(source: Path) -> list[Path]:
    files = [source / name for name in IMAGE_INPUTS]
    files += sorted(p for p in (source / "operator").rglob("*") if p.is_file() and "__pycache__" not in p.parts)
    return files


def _host_trust() -> list[str]:
    """The host's CA bundle for the build's downloads, when the host names one (a TLS-inspecting proxy's)."""
    bundle = os.environ.get("SSL_CERT_FILE") or os.environ.get("PIP_CERT")
    if not bundle or not Path(bundle).is_file():
        return []
    inside = "/tmp/host-ca.crt"
    return [f"--volume={bundle}:{inside}:ro", f"--build-arg=SSL_CERT_FILE={inside}", f"--build-arg=PIP_CERT={inside}"]


def project_image(source: Path, log: Callable[[str], None] = print) -> Image:
    """The project's image, built from its Dockerfile on the Debian base, cached by the hash of its inputs."""
    base = base_image(log)
    files = project_inputs(source)
    key = _digest([base.encode(), *(str(p.relative_to(source)).encode() + p.read_bytes() for p in files)])
    image = Image(f"{IMAGE_NAME}:dev-{key}", images_dir() / f"modelops-{key}.tar")
    with build_lock("image-project"):
        if image.archive.exists():
            return image
        log(f"building {image.reference} from the Dockerfile (buildah)")
        buildah = Buildah()
        uv_cache = cache_root() / "image-uv-cache"
        uv_cache.mkdir(parents=True, exist_ok=True)
        buildah(
            "bud",
            *_host_trust(),
            "--signature-policy",
            str(buildah.policy),
            "--isolation=chroot",
            "--pull=never",
            "--layers",
            f"--build-arg=BASE={base}",
            f"--volume={uv_cache}:/root/.cache/uv",
            f"--tag={image.reference}",
            "--file=Dockerfile",
            ".",
            cwd=source,
        )
        buildah.push_archive(image)
        _forget_older_builds(buildah, image)
    return image
