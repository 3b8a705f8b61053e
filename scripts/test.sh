#!/usr/bin/env bash
# Install everything the test suite needs, then run the whole suite.
# Used by the README and by CI (.ci/run). Safe to run again: installs are skipped when present.
set -euo pipefail
cd "$(dirname "$0")/.."

missing=()
# need COMMAND PACKAGE...: the Debian packages that provide COMMAND, when it is missing.
need() { command -v "$1" >/dev/null || missing+=("${@:2}"); }

need promtool prometheus           # promtool and a real Prometheus: rule tests, end-to-end tests
need jsonnet jsonnet               # jsonnet and jsonnetfmt: renders and checks the mixin in deploy/mixin
need cc gcc libc6-dev              # the C test workloads
need clang clang llvm              # scripts/build-bpf.sh: the BPF objects, rebuilt by tests/test_bpf_build.py
need bpftool bpftool               # ...links them; tests/test_bpf_lifecycle.py lists the kernel's programs
# Files, not commands: libbpf's headers (the build) and libbpf.so.1 (the BPF source at run time).
[ -f /usr/include/bpf/bpf_helpers.h ] || missing+=(libbpf-dev)
ldconfig -p 2>/dev/null | grep -q 'libbpf\.so\.1 ' || missing+=(libbpf1)
# The container tests (marker "container"; podman runs them with tests/containers/containers.conf):
need podman podman                 # build and run the image, play the pod, boot systemd
need runc runc                     # podman's runtime there (crun refuses a hybrid cgroup hierarchy)
need catatonit catatonit           # the pause process of a played pod's infra container
need /usr/lib/cni/portmap containernetworking-plugins  # the bridge network and published ports
need debootstrap debootstrap       # scripts/image.sh: a local base when no registry can be reached
need mount mount                   # a hugetlbfs mount for the hugepage-file pattern test (root)

if [ ${#missing[@]} -gt 0 ]; then
    if [ "$(id -u)" -ne 0 ]; then
        echo "need root to apt-get install ${missing[*]}" >&2
        exit 1
    fi
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

python3 -m pip install --quiet --disable-pip-version-check --root-user-action=ignore -e '.[test]'
exec python3 -m pytest "$@"
