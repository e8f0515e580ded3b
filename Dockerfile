# One image for the operator and its runtimes (trainer, server): `modelops run`, `modelops train`, `modelops serve`.
FROM python:3.11-slim AS build
WORKDIR /src
RUN pip install --no-cache-dir uv==0.13.8
COPY pyproject.toml requirements-image.lock README.md ./
RUN uv venv /opt/venv && uv pip sync --python /opt/venv/bin/python requirements-image.lock
COPY operator ./operator
RUN uv pip install --python /opt/venv/bin/python --no-deps . && rm -rf /root/.cache

FROM python:3.11-slim
COPY --from=build /opt/venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    BENTOML_DO_NOT_TRACK=true \
    BENTOML_HOME=/tmp/bentoml
USER 65532:65532
ENTRYPOINT ["modelops"]
CMD ["run"]
