"""Shared paths and helpers."""

from pathlib import Path

from modelops.devcluster.operator import wait_until_answering

ROOT = Path(__file__).resolve().parents[1]

__all__ = ["ROOT", "wait_until_answering"]
