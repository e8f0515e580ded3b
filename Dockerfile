# One image for the operator and its runtimes (trainer, server): `modelops run`, `modelops train`, `modelops serve`.
# The chart runs it as user 65532 with a read-only root filesystem (and an emptyDir on /tmp).
# BASE is any image with Python 3.11 and its venv module in one place for both stages: `make image` builds on one
# assembled from Debian's packages when no registry can be reached (modelops.devcluster.images).
ARG BASE=python:3.11-slim

FROM ${BASE} AS build
# Unset by default; a build behind a TLS-inspecting proxy names its CA bundle (make image passes the host's).
ARG SSL_CERT_FILE PIP_CERT
WORKDIR /src
ENV UV=/opt/uv/bin/uv UV_LINK_MODE=copy UV_PYTHON_DOWNLOADS=never
RUN python3 -m venv /opt/uv && /opt/uv/bin/pip install --quiet --no-cache-dir uv==0.13.8
COPY scripts/image-venv.sh requirements-image.lock ./
RUN sh image-venv.sh deps /opt/venv
COPY pyproject.toml README.md ./
COPY operator ./operator
RUN sh image-venv.sh app /opt/venv

FROM ${BASE}
COPY --from=build /opt/venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    BENTOML_DO_NOT_TRACK=true \
    BENTOML_HOME=/tmp/bentoml
USER 65532:65532
ENTRYPOINT ["modelops"]
CMD ["run"]
