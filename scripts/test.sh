#!/usr/bin/env bash
# Install everything the test suite needs, then run the whole suite.
# Used by the README and by CI (.ci/run). Safe to run again: installs are skipped when present.
set -euo pipefail
cd "$(dirname "$0")/.."

missing=()
# need COMMAND PACKAGE...: the Debian packages that provide COMMAND, when it is missing.
need() { command -v "$1" >/dev/null || missing+=("${@:2}"); }

need promtool prometheus           # promtool and a real Prometheus: rule tests, end-to-end tests
need cc gcc libc6-dev              # the C test workloads
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
