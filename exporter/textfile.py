"""Textfile mode: write the exposition once, atomically, for node_exporter's
textfile collector (``--collector.textfile.directory``).

node_exporter reads every ``*.prom`` file in the directory on each scrape; a
half-written file would be read as garbage, so write a temporary file in the
same directory and rename it over the target (rename is atomic on one filesystem).
"""

import os
import tempfile


def write_textfile(exposition, path: str) -> int:
    """Collect once and write to *path* (the text format node_exporter reads); return the bytes written."""
    body, _ = exposition.render(None)
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=".vma-exporter.", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(body)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)  # mkstemp makes 0600; node_exporter may run as another user
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    return len(body)
