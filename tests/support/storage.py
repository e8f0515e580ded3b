"""The dev cluster's object store (S3), as the tests read and write it."""

from __future__ import annotations

from pathlib import Path

from modelops.devcluster.objectstore import SECRET_NAME, ObjectStore

#: The Secret every test namespace holds for the store (as a user's namespace would hold its store's keys).
STORAGE_SECRET = SECRET_NAME


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
