# syntax=docker/dockerfile:1
# Two images from one file:
#   docker build --target collector -t otelcol-behavior .   # bin/otelcol-behavior (ocb build)
#   docker build --target sidecar   -t behavior-sidecar .   # python -m sidecar serve
# Run them side by side (same pod / network namespace), the collector pointing
# BEHAVIOR_SIDECAR_ENDPOINT at the sidecar; collector-config/README.md lists the env vars.

ARG GO_VERSION=1.26
ARG PYTHON_VERSION=3.11

# --- collector: build with ocb (scripts/collector/build.sh pins ocb and the module versions)
FROM golang:${GO_VERSION}-bookworm AS collector-build
# build.sh defaults to https://proxy.golang.org; --build-arg GOPROXY=... to use a mirror.
ARG GOPROXY
WORKDIR /src
# Only what the build reads, so a sidecar change does not invalidate this layer.
COPY builder-config.yaml ./
COPY scripts/collector/ scripts/collector/
COPY processor/ processor/
RUN --mount=type=cache,target=/root/go/pkg/mod \
    --mount=type=cache,target=/root/.cache/go-build \
    bash scripts/collector/build.sh

FROM gcr.io/distroless/static-debian12:nonroot AS collector
COPY --from=collector-build /src/bin/otelcol-behavior /otelcol-behavior
COPY collector-config/ /etc/otelcol-behavior/
# In a container, listen on all interfaces (the configs default to loopback for development).
ENV OTLP_GRPC_ENDPOINT=0.0.0.0:4317 \
    OTLP_HTTP_ENDPOINT=0.0.0.0:4318 \
    COLLECTOR_METRICS_HOST=0.0.0.0
EXPOSE 4317 4318 8888
ENTRYPOINT ["/otelcol-behavior"]
CMD ["--config", "/etc/otelcol-behavior/openobserve.yaml"]

# --- sidecar: the Python correlation service
FROM python:${PYTHON_VERSION}-slim-bookworm AS sidecar
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1
WORKDIR /app
COPY pyproject.toml README.md ./
COPY sidecar/ sidecar/
RUN pip install . \
    && useradd --system --uid 10001 --home-dir /app sidecar
# The example spec tree, so the image runs as is; mount your own at /specs.
COPY examples/online-boutique/specs/ /specs/
USER 10001
EXPOSE 50051
ENTRYPOINT ["python", "-m", "sidecar"]
CMD ["serve", "--specs", "/specs", "--listen", "0.0.0.0:50051"]
