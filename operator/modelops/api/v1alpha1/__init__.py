"""API group modelops.io, version v1alpha1."""

from .common import API_VERSION, CATEGORY, GROUP, VERSION, Condition
from .modelbuild import ModelBuild, ModelBuildSpec, ModelBuildStatus
from .modeldeployment import ModelDeployment, ModelDeploymentSpec, ModelDeploymentStatus
from .modelmonitor import ModelMonitor, ModelMonitorSpec, ModelMonitorStatus
from .modelversion import ModelVersion, ModelVersionSpec, ModelVersionStatus
from .resource import CustomResource

#: Every kind of the API, in the order of the lifecycle.
KINDS: tuple[type[CustomResource], ...] = (ModelBuild, ModelVersion, ModelDeployment, ModelMonitor)

__all__ = [
    "API_VERSION",
    "CATEGORY",
    "GROUP",
    "KINDS",
    "VERSION",
    "Condition",
    "CustomResource",
    "ModelBuild",
    "ModelBuildSpec",
    "ModelBuildStatus",
    "ModelDeployment",
    "ModelDeploymentSpec",
    "ModelDeploymentStatus",
    "ModelMonitor",
    "ModelMonitorSpec",
    "ModelMonitorStatus",
    "ModelVersion",
    "ModelVersionSpec",
    "ModelVersionStatus",
]
