#!/usr/bin/env bash
# Install everything the test suite needs, then run the whole suite.
# Used by the README and by CI (.ci/run). Safe to run again: installs are skipped when present.
set -euo pipefail
cd "$(dirname "$0")/.."

apt_install() {
    # Debian packages: promtool and prometheus for the rule tests and the end-to-end tests,
    # a C compiler for the test helpers.
    local missing=()
    command -v promtool >/dev/null || missing+=(prometheus)
    command -v cc >/dev/null || missing+=(gcc libc6-dev)
    if [ ${#missing[@]} -gt 0 ]; then
        if [ "$(id -u)" -ne 0 ]; then
            echo "need root to apt-get install ${missing[*]}" >&2
            exit 1
        fi
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
    fi
}
apt_install

python3 -m pip install --quiet --disable-pip-version-check --root-user-action=ignore -e '.[test]'
exec python3 -m pytest "$@"
