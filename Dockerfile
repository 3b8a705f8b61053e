# vma-exporter: per-process memory map areas (VMAs) against vm.max_map_count, for Prometheus.
#
#   docker build -t vma-exporter:0.1.0 .
#
# Two stages: "build" makes the wheel and installs it with its dependencies into a
# virtual environment; the final image gets only that environment and Debian's libbpf1
# on the same slim base (no compiler, no source tree, no wheel cache). psutil, PyYAML
# and bcrypt come as manylinux wheels, so no stage needs a C compiler.
#
# tests/test_deploy.py runs the build stage's RUN lines, in order, in a fresh virtual
# environment (no container engine needed): keep them plain shell, reading paths from
# the ENV values below. tests/test_container_image.py builds the whole file with podman
# (scripts/image.sh, which also makes a base where the official one cannot be pulled).

ARG PYTHON_IMAGE=python:3.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
ENV VENV=/opt/vma-exporter \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_ROOT_USER_ACTION=ignore
WORKDIR /src
COPY pyproject.toml README.md ./
COPY exporter/ exporter/
# The wheel first (the same artefact a release publishes), then a venv with only it
# and its runtime dependencies; pip and setuptools leave the venv so the image has
# no installer in the exporter's environment.
RUN python3 -m pip wheel --no-deps --wheel-dir dist . \
 && python3 -m venv "$VENV" \
 && "$VENV/bin/pip" install dist/vma_exporter-*.whl \
 && "$VENV/bin/pip" uninstall --yes pip setuptools

FROM ${PYTHON_IMAGE}
ARG PYTHON_IMAGE
# libbpf.so.1 for the kernel-side (BPF) collection source, which loads it through ctypes
# at run time. Debian's package from the base's own release, not pinned to a revision
# (a security update removes the old one from the archive and a pinned build would fail);
# the package lists leave with the same layer.
# hadolint ignore=DL3008
RUN apt-get update \
 && apt-get install --yes --no-install-recommends libbpf1 \
 && rm -rf /var/lib/apt/lists/*
ARG VERSION=0.1.0
LABEL org.opencontainers.image.title="vma-exporter" \
      org.opencontainers.image.description="Prometheus exporter of per-process memory map areas (VMAs) against vm.max_map_count, memory and hugepages" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.documentation="docs/deploy.md" \
      org.opencontainers.image.base.name="${PYTHON_IMAGE}"
ENV VENV=/opt/vma-exporter \
    PATH=/opt/vma-exporter/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1
COPY --from=build /opt/vma-exporter /opt/vma-exporter
# Numeric, so Kubernetes' runAsNonRoot can check it without /etc/passwd. To read
# other users' /proc/PID/maps the container runs as uid 0 with every capability
# dropped but SYS_PTRACE (see deploy/kubernetes/daemonset.yaml and docs/deploy.md);
# as this default user it reads only processes of its own uid.
USER 65534:65534
EXPOSE 9979
ENTRYPOINT ["/opt/vma-exporter/bin/vma-exporter"]
CMD ["--web.listen-address=:9979"]
