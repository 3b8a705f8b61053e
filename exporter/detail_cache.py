"""Reuse the breakdown of /proc/PID/maps while the file is byte-for-byte unchanged.

Parsing the names of a process's areas costs about as much CPU as the kernel
spends writing them, and it is done every scrape for the exported processes,
which are the biggest on the node. Most of them do not change their mappings
between two scrapes. So the maps of an exported process are read into memory
(up to LIMIT bytes), fingerprinted with CRC-32 and length as they arrive, and
summarized only when the fingerprint differs from the last collection's.
The count itself is always the fresh one. A maps file larger than LIMIT is
streamed and summarized as usual, so memory stays bounded.
"""

import zlib

from exporter.procfs.maps import Classifier, MapsSummary, iter_chunks, summarize
from exporter.procfs.paths import Roots

Identity = tuple[int, int]


def _drain(held: list[bytes], stream):
    """The held chunks, each released once summarized, then the rest of the stream."""
    held.reverse()
    while held:
        yield held.pop()
    yield from stream


class DetailCache:
    LIMIT = 4 << 20  # ~50,000 areas; bigger ones are streamed, not cached

    def __init__(self):
        self._last: dict[Identity, tuple[tuple, MapsSummary]] = {}
        self._this: dict[Identity, tuple[tuple, MapsSummary]] = {}
        self.hits = 0

    def read(self, roots: Roots, pid: int, identity: Identity, classifier: Classifier,
             deadline: float | None = None) -> MapsSummary:
        chunks: list[bytes] = []
        size = crc = 0
        stream = iter_chunks(roots.pid(pid, "maps"), deadline=deadline)
        for chunk in stream:
            chunks.append(chunk)
            size += len(chunk)
            crc = zlib.crc32(chunk, crc)
            if size > self.LIMIT:
                return summarize(_drain(chunks, stream), classifier)
        fingerprint = (size, crc, classifier.mounts)
        last = self._last.get(identity)
        if last is not None and last[0] == fingerprint:
            self.hits += 1
            summary = last[1]
        else:
            summary = summarize(chunks, classifier)
        self._this[identity] = (fingerprint, summary)
        return summary

    def end_collection(self) -> None:
        """Keep only what this collection read: entries of exited processes go."""
        self._last, self._this = self._this, {}
