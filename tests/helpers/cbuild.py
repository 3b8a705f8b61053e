"""Compile a C test helper once: the system C compiler, into tests/helpers/bin/."""

import os
import shutil
import subprocess
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
BIN_DIR = os.path.join(HERE, "bin")


def build(source: str, name: str) -> str:
    """tests/helpers/bin/NAME from SOURCE, compiled again when it or helper.h is newer."""
    binary = os.path.join(BIN_DIR, name)
    newest = max(os.path.getmtime(source), os.path.getmtime(os.path.join(HERE, "helper.h")))
    if os.path.exists(binary) and os.path.getmtime(binary) >= newest:
        return binary
    cc = shutil.which("cc") or shutil.which("gcc")
    if cc is None:
        raise RuntimeError("no C compiler: scripts/test.sh installs gcc")
    os.makedirs(BIN_DIR, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=BIN_DIR)
    os.close(fd)
    subprocess.run([cc, "-O2", "-Wall", "-pthread", "-o", tmp, source, "-lrt"], check=True)
    os.replace(tmp, binary)  # atomic: parallel sessions never run a half-written binary
    return binary
