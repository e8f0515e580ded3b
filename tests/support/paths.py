"""Where the tests find the repository's files."""

from pathlib import Path

#: The repository's root: where crds/, charts/, examples/ and pyproject.toml are.
ROOT = Path(__file__).resolve().parents[2]
