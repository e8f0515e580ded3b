"""Pure functions from a resource's spec to the manifests of its children (no I/O)."""
