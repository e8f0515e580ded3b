#!/bin/sh
# The image's Python environment, in two steps so Docker caches the dependencies' layer:
#   image-venv.sh deps VENV   the locked runtime dependencies (requirements-image.lock: no dev tools)
#   image-venv.sh app VENV    modelops itself, without touching the dependencies
# The Dockerfile runs it, and so does tests/unit/test_image.py: the test checks what the image gets, and (with
# LOCK=requirements-operator.lock) that the operator starts on its own declared dependencies.
set -eu
step="$1"
venv="$2"
uv="${UV:-uv}"
lock="${LOCK:-requirements-image.lock}"
case "$step" in
  deps)
    "$uv" venv --quiet --python 3.11 "$venv"
    "$uv" pip sync --quiet --python "$venv/bin/python" "$lock" ;;
  app)
    "$uv" pip install --quiet --python "$venv/bin/python" --no-deps . ;;
  *)
    echo "usage: image-venv.sh deps|app VENV" >&2
    exit 2 ;;
esac
