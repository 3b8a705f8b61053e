"""/proc/PID/status: every field, by name, with or without a unit.

proc(5); fs/proc/array.c (proc_pid_status) writes one ``Key:<TAB>value`` line per
field. Memory lines are ``%8lu kB`` (task_mem in fs/proc/task_mmu.c); others are
plain numbers (``Threads``), several numbers (``Uid``: real, effective, saved,
filesystem), hex masks (``CapEff``) or text (``State``). Fields come and go with
kernel versions: RssFile/RssShmem since 4.5, HugetlbPages since 4.4; kernel
threads and zombies have no Vm lines at all. A missing field is ``None``, never 0.

The exporter reads status only where statm does not tell enough (VmData,
HugetlbPages, the effective uid): parse_status() does not split the file's ~55
lines up front, it looks a field up when asked (one bytes.find in C), so a caller
that wants three fields pays for three.
"""

from exporter.procfs import ParseError, parse_u64, read_file
from exporter.procfs.paths import Roots


class Status:
    """The fields of one status file, looked up by name (``b"VmRSS"``)."""

    __slots__ = ("_data",)

    def __init__(self, data: bytes):
        # A leading newline makes every key findable as b"\nKey:", the first one too.
        self._data = b"\n" + data

    def raw(self, key: bytes) -> bytes | None:
        """The value as written, surrounding blanks stripped; None if the field is absent."""
        data = self._data
        at = data.find(b"\n" + key + b":")
        if at < 0:
            return None
        start = at + len(key) + 2
        end = data.find(b"\n", start)
        return data[start:end if end >= 0 else len(data)].strip()

    def text(self, key: bytes) -> str | None:
        raw = self.raw(key)
        return None if raw is None else raw.decode("utf-8", "backslashreplace")

    def number(self, key: bytes) -> int | None:
        """A field holding one unsigned number (Threads, NSpid's first)."""
        raw = self.raw(key)
        if raw is None:
            return None
        return parse_u64(raw.split(None, 1)[0] if raw else raw, "status", key.decode())

    def numbers(self, key: bytes) -> list[int] | None:
        """A field of several numbers separated by blanks (Uid, Gid)."""
        raw = self.raw(key)
        if raw is None:
            return None
        return [parse_u64(word, "status", key.decode()) for word in raw.split()]

    def kb_bytes(self, key: bytes) -> int | None:
        """A memory field (``%8lu kB``) in bytes."""
        raw = self.raw(key)
        if raw is None:
            return None
        number, _, unit = raw.partition(b" ")
        if unit != b"kB":
            raise ParseError("status", f"{key.decode()}: expected '<n> kB', got {raw[:40]!r}")
        return parse_u64(number, "status", key.decode()) << 10

    def hex_mask(self, key: bytes) -> int | None:
        """A hexadecimal bit mask (CapEff, SigBlk)."""
        raw = self.raw(key)
        if raw is None:
            return None
        try:
            if raw and len(raw) <= 32:  # 128 bits: no mask the kernel writes is wider
                return int(raw, 16)
        except ValueError:
            pass
        raise ParseError("status", f"{key.decode()}: not a hex mask: {raw[:40]!r}")

    # The fields the exporter uses, by the names top and the README give them.
    @property
    def virtual(self) -> int | None:  # VIRT
        return self.kb_bytes(b"VmSize")

    @property
    def resident(self) -> int | None:  # RES
        return self.kb_bytes(b"VmRSS")

    @property
    def rss_file(self) -> int | None:
        return self.kb_bytes(b"RssFile")

    @property
    def rss_shmem(self) -> int | None:
        return self.kb_bytes(b"RssShmem")

    @property
    def shared(self) -> int | None:
        """top's SHR: file-backed plus shmem resident pages (statm's shared since 4.5)."""
        rss_file, rss_shmem = self.rss_file, self.rss_shmem
        if rss_file is None and rss_shmem is None:
            return None
        return (rss_file or 0) + (rss_shmem or 0)

    @property
    def hugetlb(self) -> int | None:
        return self.kb_bytes(b"HugetlbPages")

    @property
    def data(self) -> int | None:
        """VmData: private writable and not stack (mm->data_vm), what RLIMIT_DATA limits."""
        return self.kb_bytes(b"VmData")

    @property
    def threads(self) -> int | None:
        return self.number(b"Threads")

    @property
    def uid(self) -> int | None:
        """The effective uid (the second of Uid's four), for the {{.Username}} template."""
        uids = self.numbers(b"Uid")
        if uids is not None and len(uids) != 4:
            raise ParseError("status", f"Uid: expected 4 numbers, got {len(uids)}")
        return uids[1] if uids else None


def parse_status(data: bytes) -> Status:
    """The bytes of /proc/PID/status (pure). Malformed values raise ParseError when read."""
    return Status(data)


def read_status(roots: Roots, pid: int, tid: int | None = None) -> Status:
    return parse_status(read_file(roots.pid(pid, "status", tid)))
