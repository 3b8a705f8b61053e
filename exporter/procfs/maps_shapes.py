"""/proc/PID/maps: the shapes of the anonymous areas, tallied without a Python step per area.

proc(5). An anonymous area is a line without a name; the kernel writes it as
``start-end perms 00000000 00:00 0 \\n`` (show_map_vma in fs/proc/task_mmu.c
prints offset, device and inode 0 when the area has no file). Its *shape* is
what repeats when areas multiply: its size and protections, the protections
of the anonymous area before it, and whether it starts where that one ends.
Each shape is one int (``encode``); the tally counts them per chunk of text.

Why this way: a process may hold a million anonymous areas, and any Python
step per area (even a regex match, ~150 ns) would cost more than the kernel
spends writing the line. So a run of anonymous lines becomes one big integer
in three C calls (``translate``, ``unhexlify``, ``int.from_bytes``): a line
of 12-digit addresses is 49 bytes, 48 hex digits once ":" is deleted, one
192-bit lane. The fields of all areas are then computed at once with shifts
and masks; no carry crosses a lane, because each lane's end is above its
start. Each lane's middle word is its key. What multiplies is regular, so
when the keys repeat every one or two lanes one compare counts them;
otherwise ``Counter`` tallies them from an ``array``. Named lines are taken
out of a chunk with ``split`` and ``rpartition`` over ``map``; lines whose
addresses are not 12 hex digits (32-bit processes, low mappings) take a
slower path of C-level ``map`` calls that gives the same keys.

The tally is the same however the file is cut into chunks: the only state
carried from chunk to chunk is the previous anonymous area's end and
protections.
"""

import binascii
import re
import sys
from array import array
from collections import Counter
from itertools import repeat
from operator import itemgetter, lshift, ne, or_, rshift, sub
from typing import NamedTuple

ANON_END = b" 00000000 00:00 0 \n"  # what ends an anonymous line, and nothing else
PAGE_SHIFT = 12  # sizes are kept in 4 KiB units: every page size divides into them
MAX_PAGES = (1 << 36) - 1  # 36 bits of 4 KiB units: 256 TiB, all of a 48-bit address space
MAX_SHAPES = 50_000  # distinct keys kept before the tally is folded (bounds memory)

# Key layout (one int per area):
#   bits 24..59  size in 4 KiB units
#   bits 20, 16, 12, 8  r, w, x, s (shared) of the area
#   bits 21, 17, 13, 9  r, w, x, s of the previous anonymous area
#   bit 0        1 when it does not start where the previous anonymous area ends
_PERM_BITS = {ord("r"): 1 << 20, ord("w"): 1 << 16, ord("x"): 1 << 12, ord("s"): 1 << 8}
NOT_CONTIGUOUS = 1

_WIDTH = 49  # bytes of an anonymous line with 12-digit addresses, newline included
# Hex digits stay; r, w, x, s become 1 and the other bytes of a line 0 (":" is
# deleted), so a line is 48 hex digits, a 192-bit lane, and each protection
# flag one nibble of it.
_TABLE = bytearray(range(256))
for _c in b"rwxs":
    _TABLE[_c] = ord("1")
for _c in b"p- \n":
    _TABLE[_c] = ord("0")
_TABLE = bytes(_TABLE)
_RECORD = re.compile(rb"([0-9a-f]{1,16})-([0-9a-f]{1,16}) ([-r][-w][-x][ps])")


class Shape(NamedTuple):
    """One decoded key."""

    size: int  # bytes
    perms: str  # "rw-p"
    prev_perms: str  # of the previous anonymous area ("---p" when there is none)
    contiguous: bool  # starts where the previous anonymous area ends


def perm_bits(perms: bytes) -> int:
    return sum(_PERM_BITS.get(c, 0) for c in perms)


def encode(size: int, perms: bytes, prev_perms: bytes, contiguous: bool) -> int:
    pages = min(size >> PAGE_SHIFT, MAX_PAGES)
    return (pages << 24) | perm_bits(perms) | (perm_bits(prev_perms) << 1) | (0 if contiguous else NOT_CONTIGUOUS)


def _perms(key: int, shift: int) -> str:
    return "".join((c if key >> (bit + shift) & 1 else "-") for c, bit in (("r", 20), ("w", 16), ("x", 12))) + (
        "s" if key >> (8 + shift) & 1 else "p")


def decode(key: int) -> Shape:
    return Shape((key >> 24) << PAGE_SHIFT, _perms(key, 0), _perms(key, 1), not key & NOT_CONTIGUOUS)


def _lanes(n: int, value: int) -> int:
    """*value* repeated in each of n 192-bit lanes."""
    return int.from_bytes(value.to_bytes(24, "big") * n, "big")


# In a lane (digit k of the line at bits 4*(47-k)..): start at bits 144..191,
# end at 92..139, the flags r, w, x, s at 84, 80, 76, 72; the rest is 0.
_E_MASK, _P_MASK, _GAP = ((1 << 48) - 1) << 92, sum(1 << b for b in (72, 76, 80, 84)), 1 << 140
# Masks for the largest number of lanes seen and for the last number asked: two
# entries of at most CACHED_LANES lanes, about 1.5 MiB (a 256 KiB chunk is ~5,400
# lines; a whole file given as one chunk is not kept). Fewer lanes take the
# largest's masks shifted right, which costs a fraction of building them.
CACHED_LANES = 8192
_widest: tuple[int, tuple[int, int, int, int]] | None = None
_last: tuple[int, tuple[int, int, int, int]] | None = None


def _build(n: int) -> tuple[int, int, int, int]:
    low = (1 << (192 * (n - 3))) - 1 if n > 3 else 0  # lanes 0 .. n-4, for the periodic check
    return _lanes(n, _E_MASK), _lanes(n, _P_MASK), _lanes(n, _GAP), low


def _masks_for(n: int) -> tuple[int, int, int, int]:
    global _widest, _last
    last = _last
    if last is not None and last[0] == n:
        return last[1]
    if n > CACHED_LANES:
        return _build(n)
    widest = _widest
    if widest is None or widest[0] < n:
        masks = _build(n)
        _widest = (n, masks)
    elif n > 3:
        drop = 192 * (widest[0] - n)
        masks = tuple(m >> drop for m in widest[1])
    else:
        masks = _build(n)
    _last = (n, masks)
    return masks


class ShapeTally:
    """Counts the shape keys of anonymous areas, chunk after chunk, in file order."""

    def __init__(self):
        self.counts: Counter[int] = Counter()
        self._end = -1  # end of the previous anonymous area (-1: none yet)
        self._bits = 0  # its protection bits

    def add_pure(self, buf: bytes, cut: int, lines: int) -> None:
        """*buf*[:cut] holds *lines* lines, none of them named: all anonymous."""
        text = buf if cut == len(buf) else buf[:cut]
        if not self._fast(text, lines):
            self._slow(_records_of(text))

    def add_mixed(self, buf: bytes, cut: int) -> None:
        """*buf*[:cut] has named lines too. Named lines come in clusters (the
        binary and heap low, libraries high), so the anonymous lines before the
        first named line and after the last take the fast path as they are;
        only the lines between are sorted out first."""
        first = buf.find(b"  ", 0, cut)  # every named line, and no other, holds two spaces
        last = buf.rfind(b"  ", 0, cut)
        if first < 0:
            self.add_pure(buf, cut, buf.count(b"\n", 0, cut))
            return
        start = buf.rfind(b"\n", 0, first) + 1
        end = buf.find(b"\n", last, cut) + 1 or cut
        if start:
            self.add_pure(buf[:start], start, buf.count(b"\n", 0, start))
        recs = _records_of(buf[start:end])
        if recs and not self._fast(ANON_END.join(recs) + ANON_END, len(recs)):
            self._slow(recs)
        if end < cut:
            self.add_pure(buf[end:cut], cut - end, buf.count(b"\n", end, cut))

    def add_line(self, line: bytes) -> None:
        """A last line without its newline (a truncated file)."""
        if line.endswith(ANON_END[:-1]):
            self._slow([line[: 1 - len(ANON_END)]])

    def _fast(self, text: bytes, n: int) -> bool:
        """All lanes at once; False (nothing counted) unless *text* is n
        anonymous lines of 12-digit addresses."""
        if len(text) != _WIDTH * n or text[12::_WIDTH] != b"-" * n or text[48::_WIDTH] != b"\n" * n:
            return False
        try:
            x = int.from_bytes(binascii.unhexlify(text.translate(_TABLE, b":")), "big")
        except (binascii.Error, ValueError):  # not kernel text (a fuzzer's bytes)
            return False
        e_mask, p_mask, gap_mask, low = _masks_for(n)
        top = 192 * (n - 1)  # the first line is the most significant lane
        end = x & e_mask
        start = (x >> 52) & e_mask
        prev_end = (end >> 192) | ((self._end & ((1 << 48) - 1)) << (92 + top))
        # A lane's (start xor previous end) is 0 iff contiguous; adding all ones to
        # its 48 bits carries into bit 140 iff it is not 0; >> 76 takes it to bit 64.
        gap = ((((start ^ prev_end) + e_mask) & gap_mask) >> 76)
        if self._end < 0:
            gap |= 1 << (top + 64)  # the first anonymous area of the file follows nothing
        perms = x & p_mask  # r, w, x, s at bits 84, 80, 76, 72
        # The previous lane's flags one bit up: >> 191 is one lane down, one bit up.
        prev = (perms >> 191) | (self._bits << (top + 65))
        # >> 16 puts the size in 4 KiB units at bits 88..123: the key is a lane's
        # middle word (bits 64..127), laid out as encode() says.
        keys = ((end - start) >> 16) | perms | prev | gap
        if keys < 0:  # an end below its start: not kernel text
            return False
        if self._periodic(keys, n, top, low):
            self._end, self._bits = int(text[-36:-24], 16), perm_bits(text[-23:-19])
            return True
        try:
            words = array("Q", keys.to_bytes(24 * n, "big"))
        except OverflowError:  # an end below its start: not kernel text
            return False
        if sys.byteorder == "little":  # the lanes were written big-endian
            words.byteswap()
        self.counts.update(words[1::3])  # each lane's middle word is its key
        last = text[-_WIDTH:]
        self._end, self._bits = int(last[13:25], 16), perm_bits(last[26:30])
        self._bound()
        return True

    def _periodic(self, keys: int, n: int, top: int, low: int) -> bool:
        """Count the keys without a Counter when the lanes below the first repeat
        every one or two lanes (a carved reservation, pieces, stacks: what
        multiplies is regular): one compare instead of an array and a tally."""
        if n < 5 or (keys >> 384) & low != keys & low:  # lanes 2..n-2 against 0..n-4
            return False
        lane = (1 << 192) - 1
        k0, k1, rest = (keys & lane) >> 64, ((keys >> 192) & lane) >> 64, n - 1
        self.counts[keys >> (top + 64)] += 1
        self.counts[k0] += (rest + 1) // 2
        self.counts[k1] += rest // 2
        return True

    def _slow(self, recs: list[bytes]) -> None:
        """The same keys through C-level map calls, for records of any width."""
        found = [m.groups() for m in filter(None, map(_RECORD.fullmatch, recs))]
        if not found:
            return
        starts_hex, ends_hex, perms = zip(*found)
        starts = list(map(int, starts_hex, repeat(16)))
        ends = list(map(int, ends_hex, repeat(16)))
        bits = list(map(perm_bits, perms))
        prev_ends = [self._end]
        prev_ends += ends[:-1]
        prev_bits = [self._bits]
        prev_bits += bits[:-1]
        pages = map(min, map(rshift, map(sub, ends, starts), repeat(PAGE_SHIFT)), repeat(MAX_PAGES))
        keys = map(or_, map(or_, map(lshift, pages, repeat(24)), bits),
                   map(or_, map(lshift, prev_bits, repeat(1)), map(ne, starts, prev_ends)))
        self.counts.update(keys)
        self._end, self._bits = ends[-1], bits[-1]
        self._bound()

    def _bound(self) -> None:
        if len(self.counts) > MAX_SHAPES:  # an irregular process: keep the shapes that repeat most
            keep = dict(self.counts.most_common(1000))
            self.counts.clear()
            self.counts.update(keep)


def _records_of(text: bytes) -> list[bytes]:
    """``start-end perms`` of each anonymous line of *text*, in order."""
    parts = text.split(ANON_END)
    parts.pop()  # what follows the last anonymous line: named lines only
    # rpartition drops the named lines in front of an anonymous one.
    return list(map(itemgetter(2), map(bytes.rpartition, parts, repeat(b"\n"))))


def tally(data: bytes) -> Counter:
    """The tally of a whole maps text through the slow path: the reference the
    fast path is tested against."""
    t = ShapeTally()
    t._slow(_records_of(data if data.endswith(b"\n") else data + b"\n"))
    return t.counts
