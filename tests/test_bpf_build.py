"""The committed BPF objects are what their sources build to, and they ship.

scripts/build-bpf.sh writes exporter/bpf/BUILD-INFO with the SHA-256 of every
input (records.h, vmlinux.h, *.bpf.c) and output (*.bpf.o). Here:
- an input changed since the last build means a stale object: fail, always
  (no compiler needed);
- an object that is not the one built means a hand edit: fail;
- with the recorded toolchain (clang, bpftool, libbpf headers) on the machine,
  rebuild into a temporary directory and compare byte for byte: the build is
  reproducible, so any difference is a stale or tampered object;
- the wheel carries the objects and none of their sources.
"""

import hashlib
import os
import shutil
import subprocess
import sys
import zipfile

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BPF = os.path.join(REPO, "exporter", "bpf")
SCRIPT = os.path.join(REPO, "scripts", "build-bpf.sh")
REBUILD = "scripts/build-bpf.sh"


def build_info(directory: str = BPF) -> dict:
    info = {"input": {}, "output": {}}
    with open(os.path.join(directory, "BUILD-INFO")) as f:
        for line in f:
            if line.startswith("#"):
                continue
            key, _, rest = line.rstrip("\n").partition(": ")
            if key in ("input", "output"):
                digest, name = rest.split(None, 1)
                info[key][name.removeprefix("./")] = digest
            else:
                info[key] = rest
    return info


def sha256(path: str) -> str:
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def test_no_source_changed_since_the_objects_were_built():
    recorded = build_info()["input"]
    inputs = ["records.h", "vmlinux.h"] + sorted(n for n in os.listdir(BPF) if n.endswith(".bpf.c"))
    assert sorted(recorded) == sorted(inputs), f"sources added or removed since the last build: run {REBUILD}"
    stale = [n for n in inputs if sha256(os.path.join(BPF, n)) != recorded[n]]
    assert not stale, f"{', '.join(stale)} changed since the objects were built: run {REBUILD} and commit"


def test_the_committed_objects_are_the_built_ones():
    recorded = build_info()["output"]
    sources = {n.removesuffix(".c") for n in os.listdir(BPF) if n.endswith(".bpf.c")}
    objects = {n.removesuffix(".o") for n in os.listdir(BPF) if n.endswith(".bpf.o")}
    assert objects == sources, "every source has its object, and no object lacks a source"
    for name in sorted(recorded):
        assert sha256(os.path.join(BPF, name)) == recorded[name], f"{name} is not what {REBUILD} wrote"


def toolchain_or_skip(info: dict) -> None:
    for tool in ("clang", "bpftool"):
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} is not installed (scripts/test.sh installs it)")
    if not os.path.exists("/usr/include/bpf/bpf_helpers.h"):
        pytest.skip("libbpf headers are not installed (scripts/test.sh installs libbpf-dev)")
    clang = subprocess.run(["clang", "--version"], capture_output=True, text=True, check=True).stdout.splitlines()[0]
    if clang != info["clang"]:
        pytest.skip(f"the objects were built with {info['clang']!r}, this machine has {clang!r}: "
                    "a byte-for-byte rebuild needs the same compiler (the hashes above still apply)")


def test_a_rebuild_gives_the_same_bytes(tmp_path):
    info = build_info()
    toolchain_or_skip(info)
    out = subprocess.run(["bash", SCRIPT, "--out", str(tmp_path)], capture_output=True, text=True, timeout=300,
                         cwd=REPO, check=False)
    assert out.returncode == 0, out.stderr
    rebuilt = build_info(str(tmp_path))
    assert rebuilt["bpftool"] == info["bpftool"] and rebuilt["libbpf-headers"] == info["libbpf-headers"]
    for name in info["output"]:
        with open(os.path.join(BPF, name), "rb") as a, open(tmp_path / name, "rb") as b:
            assert a.read() == b.read(), f"{name}: the committed object differs from its rebuild: run {REBUILD}"


def test_the_wheel_ships_the_objects_and_not_their_sources(tmp_path):
    """Built from a copy of the tracked files, as a user's pip would build it."""
    tracked = subprocess.run(["git", "ls-files"], cwd=REPO, capture_output=True, text=True, check=True).stdout
    tree = tmp_path / "src"
    for name in tracked.splitlines():
        if os.path.isfile(os.path.join(REPO, name)):
            os.makedirs(tree / os.path.dirname(name), exist_ok=True)
            shutil.copy2(os.path.join(REPO, name), tree / name)
    for name in ("tasks.bpf.o", "enomem.bpf.o"):  # this checkout's, committed or not yet
        shutil.copy2(os.path.join(BPF, name), tree / "exporter" / "bpf" / name)
    out = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q",
                          "--wheel-dir", str(tmp_path / "dist"), str(tree)],
                         capture_output=True, text=True, timeout=300, check=False)
    assert out.returncode == 0, out.stderr
    wheel = next((tmp_path / "dist").glob("*.whl"))
    names = set(zipfile.ZipFile(wheel).namelist())
    assert {"exporter/bpf/tasks.bpf.o", "exporter/bpf/enomem.bpf.o", "exporter/bpf/tasks.py"} <= names
    assert not {n for n in names if n.endswith((".bpf.c", "vmlinux.h", "records.h"))}
