#!/usr/bin/env bash
# Rebuild the committed CO-RE objects exporter/bpf/*.bpf.o from their sources.
#
#   scripts/build-bpf.sh            rebuild in place (commit the .o files and BUILD-INFO with the sources)
#   scripts/build-bpf.sh --out DIR  write the objects and BUILD-INFO to DIR instead (tests/test_bpf_build.py)
#   scripts/build-bpf.sh --vmlinux  first regenerate exporter/bpf/vmlinux.h from this kernel's BTF
#
# Needs clang (BPF target), bpftool and libbpf's headers (Debian: clang, bpftool,
# libbpf-dev); the runtime needs none of them, only libbpf.so.1.
#
# Reproducible: the same inputs give the same bytes anywhere. vmlinux.h is
# committed, not generated per build, so the object does not depend on the
# build machine's kernel; `bpftool gen object` (libbpf's linker) drops the DWARF
# sections, which carry the build directory, and keeps only BTF and CO-RE
# relocations; the compiler runs inside exporter/bpf on relative names with
# -fdebug-compilation-dir=., so the BTF line info names no checkout path (a copy
# of the tree elsewhere builds the same bytes). BUILD-INFO records the tool
# versions and the SHA-256 of every input and output.
set -euo pipefail
cd "$(dirname "$0")/.."
SRC=exporter/bpf
OUT=$SRC
regen=no
while [ $# -gt 0 ]; do
    case "$1" in
        --out) OUT=$2; shift 2 ;;
        --vmlinux) regen=yes; shift ;;
        *) echo "usage: $0 [--out DIR] [--vmlinux]" >&2; exit 2 ;;
    esac
done
for tool in clang bpftool; do
    command -v "$tool" >/dev/null || { echo "$tool is missing (Debian: apt-get install clang bpftool libbpf-dev)" >&2; exit 1; }
done
[ -f /usr/include/bpf/bpf_helpers.h ] || { echo "libbpf headers are missing (Debian: apt-get install libbpf-dev)" >&2; exit 1; }

if [ "$regen" = yes ]; then
    bpftool btf dump file /sys/kernel/btf/vmlinux format c > "$SRC/vmlinux.h"
fi

mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
for src in "$SRC"/*.bpf.c; do
    name=$(basename "$src" .c)
    (cd "$SRC" && clang -O2 -g -fdebug-compilation-dir=. -target bpf -Wall -Werror -I. -c "$name.c" -o "$tmp/$name.o")
    bpftool gen object "$tmp/$name.linked.o" "$tmp/$name.o"
    mv "$tmp/$name.linked.o" "$OUT/$name.o"
done

{
    echo "# Written by scripts/build-bpf.sh; tests/test_bpf_build.py checks it. Do not edit."
    echo "clang: $(clang --version | head -1)"
    echo "bpftool: $(bpftool version | head -1)"
    echo "libbpf-headers: $(sed -n 's/^#define LIBBPF_\(MAJOR\|MINOR\)_VERSION \([0-9]*\)/\2/p' /usr/include/bpf/libbpf_version.h | paste -sd.)"
    (cd "$SRC" && sha256sum records.h vmlinux.h ./*.bpf.c | sed 's/^/input: /')
    (cd "$OUT" && sha256sum ./*.bpf.o | sed 's/^/output: /')
} > "$OUT/BUILD-INFO"
echo "built: $(cd "$OUT" && ls ./*.bpf.o | tr '\n' ' ')in $OUT"
