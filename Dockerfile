# One image for the operator and its runtimes (trainer, server): `modelops run`, `modelops train`, `modelops serve`.
# The chart runs it as user 65532 with a read-only root filesystem (and an emptyDir on /tmp).
FROM python:3.11-slim AS build
WORKDIR /src
RUN pip install --no-cache-dir uv==0.13.8
COPY scripts/image-venv.sh requirements-image.lock ./
RUN sh image-venv.sh deps /opt/venv
COPY pyproject.toml README.md ./
COPY operator ./operator
RUN sh image-venv.sh app /opt/venv && rm -rf /root/.cache

FROM python:3.11-slim
COPY --from=build /opt/venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    BENTOML_DO_NOT_TRACK=true \
    BENTOML_HOME=/tmp/bentoml
USER 65532:65532
ENTRYPOINT ["modelops"]
CMD ["run"]
