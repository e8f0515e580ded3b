"""ModelOps: a Kubernetes operator for a model's whole life — build, version, deploy, monitor."""

__version__ = "0.1.0"
