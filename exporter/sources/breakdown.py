"""Reuse a process's maps breakdown while its mappings are unchanged.

Parsing the names of a process's areas costs about as much CPU as the kernel
spends writing them, and it is done every scrape for the exported processes,
which are the biggest on the node. Most of them do not change their mappings
between two scrapes. Two ways to know a breakdown is still right:

- ``read()``: the maps file is byte for byte the same. It is read into memory (up
  to LIMIT bytes), fingerprinted with CRC-32 and length as it arrives, and
  summarized only when the fingerprint differs from the last pass's. A file
  larger than LIMIT is streamed and summarized as usual, so memory stays bounded.
- ``reuse()``: the source can tell without reading (the BPF source's mark of the
  address space: the kernel counts every change of the mappings). Then maps is
  not read at all.
"""

import zlib

from exporter.procfs.maps import CHUNK, Classifier, MapsSummary, iter_chunks, summarize
from exporter.procfs.paths import Roots

Identity = tuple[int, int]


def _gather(pieces: list[bytes], size: int = CHUNK):
    """The pieces joined into chunks of about *size*: summarize() runs its regex once per chunk."""
    part: list[bytes] = []
    held = 0
    for piece in pieces:
        part.append(piece)
        held += len(piece)
        if held >= size:
            yield b"".join(part)
            part, held = [], 0
    if part:
        yield b"".join(part)


def _drain(held: list[bytes], stream):
    """The held chunks, each released once summarized, then the rest of the stream."""
    held.reverse()
    while held:
        yield held.pop()
    yield from stream


class BreakdownCache:
    LIMIT = 4 << 20  # ~50,000 areas; bigger ones are streamed, not cached

    def __init__(self):
        self._last: dict[Identity, tuple[tuple, MapsSummary]] = {}
        self._this: dict[Identity, tuple[tuple, MapsSummary]] = {}
        self.hits = 0

    def read(self, roots: Roots, pid: int, tid: int | None, identity: Identity, classifier: Classifier,
             deadline: float | None = None) -> MapsSummary:
        """The breakdown of /proc/PID/maps, parsed only when its content changed."""
        chunks: list[bytes] = []
        size = crc = 0
        # Each read as the kernel gives it (about a page): no joining into bigger chunks,
        # which would copy the whole file once more only to be thrown away when unchanged.
        stream = iter_chunks(roots.pid(pid, "maps", tid), size=1, deadline=deadline)
        for chunk in stream:
            chunks.append(chunk)
            size += len(chunk)
            crc = zlib.crc32(chunk, crc)
            if size > self.LIMIT:
                return summarize(_gather(_drain(chunks, stream)), classifier)
        fingerprint = (size, crc, classifier.mounts)
        last = self._last.get(identity)
        if last is not None and last[0] == fingerprint:
            self.hits += 1
            summary = last[1]
        else:
            summary = summarize(_gather(chunks), classifier)
        self._this[identity] = (fingerprint, summary)
        return summary

    def reuse(self, identity: Identity, mark: object, classifier: Classifier) -> MapsSummary | None:
        """The last pass's breakdown if the source's *mark* of the mappings is the same."""
        last = self._last.get(identity)
        if mark is None or last is None or last[0] != (mark, classifier.mounts):
            return None
        self.hits += 1
        self._this[identity] = last
        return last[1]

    def keep(self, identity: Identity, mark: object, classifier: Classifier, summary: MapsSummary) -> None:
        """Remember a breakdown under the source's mark (see reuse)."""
        if mark is not None:
            self._this[identity] = ((mark, classifier.mounts), summary)

    def end_pass(self) -> None:
        """Keep only what this pass read: entries of exited processes go."""
        self._last, self._this = self._this, {}
