"""The dev cluster's object store: versitygw, a real S3 server (Apache-2.0, built from its Go module), serving a
folder under the cluster's state directory on the node's address, so pods and the host reach the same bucket.

Pods use it as they would a user's store: `s3://` URIs, with the endpoint and keys from a Secret in their
namespace (`secret_manifest`). The keys are made at `up`, kept in a 0600 file, and handed to the server through
its environment, never on its command line.
"""

from __future__ import annotations

import json
import secrets
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

#: The Secret a namespace's builds and deployments name for the dev cluster's store (`credentialsSecret`).
SECRET_NAME = "modelops-storage"
BUCKET = "modelops"
REGION = "us-east-1"


@dataclass(frozen=True)
class ObjectStore:
    endpoint: str
    access_key: str
    secret_key: str
    bucket: str = BUCKET

    @classmethod
    def create(cls, address: str, port: int) -> ObjectStore:
        return cls(f"http://{address}:{port}", "modelops-dev", secrets.token_urlsafe(24))

    def save(self, path: Path) -> None:
        path.touch(mode=0o600)
        path.write_text(json.dumps(asdict(self)))

    @classmethod
    def load(cls, path: Path) -> ObjectStore | None:
        return cls(**json.loads(path.read_text())) if path.exists() else None

    def env(self) -> dict[str, str]:
        """What an S3 client (botocore, s3fs) reads: keys, region and the endpoint."""
        return {
            "AWS_ACCESS_KEY_ID": self.access_key,
            "AWS_SECRET_ACCESS_KEY": self.secret_key,
            "AWS_ENDPOINT_URL": self.endpoint,
            "AWS_DEFAULT_REGION": REGION,
        }

    def uri(self, *parts: str) -> str:
        return "/".join([f"s3://{self.bucket}", *(p.strip("/") for p in parts)])

    def secret_manifest(self, namespace: str) -> dict[str, Any]:
        return {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": SECRET_NAME, "namespace": namespace},
            "type": "Opaque",
            "stringData": self.env(),
        }

    def server_args(self, binary: Path, folder: Path) -> list[str]:
        address = self.endpoint.removeprefix("http://")
        return [str(binary), "--port", address, "--quiet", "posix", str(folder)]

    def server_env(self) -> dict[str, str]:
        return {"ROOT_ACCESS_KEY_ID": self.access_key, "ROOT_SECRET_ACCESS_KEY": self.secret_key}
