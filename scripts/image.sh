#!/usr/bin/env bash
# Build the container image from ./Dockerfile with podman.
#
#   scripts/image.sh [TAG]   build the image (default vma-exporter:<version>); print its tag on
#                            stdout and its size on stderr
#   scripts/image.sh base    make sure a base image is there; print its name
#
# The Dockerfile's base is the official Python image (ARG PYTHON_IMAGE). When that image is
# neither in podman's store nor can be pulled (no registry reachable), this script makes a local
# base with the same Python minor version and Debian release: `debootstrap --variant=minbase` of
# the release the official tag names (bookworm: its python3 is 3.11, as in
# python:3.11-slim-bookworm) with python3, python3-venv and python3-pip, made slim as the official
# Debian images are, and imported into podman's image store. The store is the cache: the next
# build on this machine finds it there and does not bootstrap again (unless this script's recipe
# changed). The Dockerfile is used unchanged; only --build-arg PYTHON_IMAGE names the base.
#
# Environment:
#   VMA_BASE_IMAGE   build on this base and skip the search (it must be stored or pullable)
#   DEBIAN_MIRROR    the mirror debootstrap and the local base use (http://deb.debian.org/debian)
#   BUILD_CA_BUNDLE  the CA bundle the build's RUN lines trust (default: this host's
#                    /etc/ssl/certs/ca-certificates.crt; empty: the base's own). It is mounted
#                    read-only over the base's bundle during the build and is in no layer: behind
#                    a TLS-intercepting proxy, Debian's pip (the local base's) then reaches PyPI.
#   CONTAINERS_CONF  podman's config; the tests point it at tests/containers/containers.conf
# The build runs with --network=host so the Dockerfile's RUN lines reach PyPI and Debian on hosts
# where podman's bridge network has no way out.
set -euo pipefail
cd "$(dirname "$0")/.."

die() { echo "image.sh: $*" >&2; exit 1; }
command -v podman >/dev/null || die "podman is not installed (apt-get install podman runc)"

# One source for the official base: the Dockerfile's default, e.g. python:3.11-slim-bookworm.
official=$(sed -n 's/^ARG PYTHON_IMAGE=//p' Dockerfile)
[[ $official =~ ^python:([0-9]+\.[0-9]+)-slim-([a-z]+)$ ]] ||
    die "Dockerfile's ARG PYTHON_IMAGE=$official is not python:X.Y-slim-RELEASE"
python_minor=${BASH_REMATCH[1]}
release=${BASH_REMATCH[2]}
local_base="localhost/vma-exporter-base:$release-python$python_minor"
mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
version=$(sed -n 's/^__version__ = "\(.*\)"$/\1/p' exporter/__init__.py)

# What debuerreotype's slim Debian images set: apt keeps no package caches (77 MB after an
# update) and dpkg installs no documentation, man pages or translations.
apt_clean='DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
Dir::Cache::pkgcache "";
Dir::Cache::srcpkgcache "";'
dpkg_slim='path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/groff/*
path-exclude /usr/share/info/*
path-exclude /usr/share/linda/*
path-exclude /usr/share/lintian/overrides/*
path-exclude /usr/share/locale/*
path-exclude /usr/share/man/*'

# debootstrap the release into a fresh directory under /var/tmp and import it as $local_base.
bootstrap() {
    [ "$(id -u)" -eq 0 ] || die "bootstrapping $local_base needs root (debootstrap)"
    command -v debootstrap >/dev/null || die "debootstrap is not installed (apt-get install debootstrap)"
    local rootfs got
    rootfs=$(mktemp -d /var/tmp/vma-exporter-base.XXXXXX)
    # Everything below writes under $rootfs only: refuse anything but the directory just made.
    [[ $rootfs == /var/tmp/vma-exporter-base.* && -d $rootfs ]] || die "mktemp gave '$rootfs'"
    # shellcheck disable=SC2064  # expand now: the trap must remove this directory
    trap "rm -rf '$rootfs'" EXIT
    echo "image.sh: $official cannot be had; bootstrapping $local_base (Debian $release)" >&2
    debootstrap --variant=minbase --include=python3,python3-venv,python3-pip \
        "$release" "$rootfs" "$mirror" >&2
    got=$(chroot "$rootfs" python3 -c 'import sys; print("%d.%d" % sys.version_info[:2])')
    [ "$got" = "$python_minor" ] || die "Debian $release has Python $got, the official base $python_minor"
    # The sources the official Debian images carry, security updates included.
    rm -f "$rootfs/etc/apt/sources.list"
    printf 'Types: deb\nURIs: %s\nSuites: %s %s-updates\nComponents: main\nSigned-By: %s\n\n' \
        "$mirror" "$release" "$release" /usr/share/keyrings/debian-archive-keyring.gpg \
        >"$rootfs/etc/apt/sources.list.d/debian.sources"
    printf 'Types: deb\nURIs: %s\nSuites: %s-security\nComponents: main\nSigned-By: %s\n' \
        http://deb.debian.org/debian-security "$release" /usr/share/keyrings/debian-archive-keyring.gpg \
        >>"$rootfs/etc/apt/sources.list.d/debian.sources"
    printf '%s\n' "$apt_clean" >"$rootfs/etc/apt/apt.conf.d/docker-clean"
    printf '%s\n' "$dpkg_slim" >"$rootfs/etc/dpkg/dpkg.cfg.d/docker"
    find "$rootfs/usr/share/doc" -mindepth 1 -not -type d -not -name copyright -delete
    find "$rootfs/usr/share/doc" -mindepth 1 -type d -empty -delete
    local dir
    for dir in usr/share/groff usr/share/info usr/share/linda usr/share/lintian/overrides \
        usr/share/locale usr/share/man var/lib/apt/lists var/cache/apt/archives var/log tmp; do
        [ -d "$rootfs/$dir" ] && find "$rootfs/$dir" -mindepth 1 -maxdepth 1 -not -name partial \
            -not -name lock -exec rm -rf {} +
    done
    rm -f "$rootfs"/var/cache/apt/*.bin
    tar --numeric-owner -C "$rootfs" -c . |
        podman import --quiet \
            --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
            --change 'ENV LANG=C.UTF-8' \
            --change 'CMD ["python3"]' \
            --change "LABEL $recipe_label=$(recipe)" \
            --message "debootstrap --variant=minbase $release, python3 $python_minor (stand-in for $official)" \
            - "$local_base" >/dev/null
    rm -rf "$rootfs"
    trap - EXIT
}

# The recipe's hash, kept as a label: a base bootstrapped by another version of this script is
# made again rather than reused.
recipe_label=org.vma-exporter.base.recipe
recipe() {
    { declare -f bootstrap; echo "$official $mirror $apt_clean $dpkg_slim"; } | sha256sum | cut -c1-16
}

# The local base from the store when this recipe made it; otherwise bootstrap it and remove the
# stale image it replaces (unless a container or another image still uses it).
ensure_local_base() {
    local found
    found=$(podman image inspect --format "{{.Id}} {{index .Labels \"$recipe_label\"}}" "$local_base" \
        2>/dev/null || true)
    [ "${found#* }" = "$(recipe)" ] && return
    bootstrap
    [ -z "$found" ] || podman rmi "${found%% *}" >/dev/null 2>&1 || true
}

# The base to build on: VMA_BASE_IMAGE, else the official image (stored or pulled), else the
# local one. A lock keeps two runs on one machine from bootstrapping at the same time.
base() {
    if [ -n "${VMA_BASE_IMAGE:-}" ]; then
        echo "$VMA_BASE_IMAGE"
        return
    fi
    local qualified="docker.io/library/$official"
    if podman image exists "$qualified" || timeout 120 podman pull --quiet "$qualified" >/dev/null 2>&1; then
        echo "$qualified"
        return
    fi
    local lock_dir=/run/lock
    [ -w "$lock_dir" ] || lock_dir=${TMPDIR:-/tmp}
    exec 9>"$lock_dir/vma-exporter-base.lock"
    flock 9
    ensure_local_base
    exec 9>&-
    echo "$local_base"
}

build() {
    local tag=${1:-vma-exporter:$version} from old new size
    from=$(base)
    old=$(podman image inspect --format '{{.Id}}' "$tag" 2>/dev/null || true)
    local ca=${BUILD_CA_BUNDLE-/etc/ssl/certs/ca-certificates.crt} mounts=()
    if [ -n "$ca" ] && [ -f "$ca" ]; then
        mounts=(--volume "$(realpath "$ca"):/etc/ssl/certs/ca-certificates.crt:ro")
    fi
    # --layers=false: no intermediate images stay behind in the store; --pull=never: the base
    # was settled above (a pull here would try a registry again).
    podman build --quiet --layers=false --pull=never --network=host "${mounts[@]}" \
        --build-arg "PYTHON_IMAGE=$from" --tag "$tag" . >/dev/null
    new=$(podman image inspect --format '{{.Id}}' "$tag")
    # The image this tag named before, now untagged: remove it unless a container still uses it.
    if [ -n "$old" ] && [ "$old" != "$new" ]; then
        podman rmi "$old" >/dev/null 2>&1 || true
    fi
    size=$(podman image inspect --format '{{.Size}}' "$tag")
    echo "image.sh: built $tag on $from: $size bytes ($((size / 1000000)) MB)" >&2
    echo "$tag"
}

case "${1:-}" in
    base) base ;;
    -h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//' ;;
    *) build "$@" ;;
esac
