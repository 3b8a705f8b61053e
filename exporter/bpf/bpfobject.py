"""One loaded BPF object: its programs, maps and links, all freed by close().

Wraps libbpf's bpf_object (open, set the read-only config, load: CO-RE
relocation and the verifier) and owns every link and file descriptor made from
it, so that close() returns the kernel and this process to where they were:
no program, map, link or fd outlives it, however many times the source is
reloaded (tests/test_bpf_lifecycle.py counts them).
"""

import contextlib
import ctypes
import os

from exporter.bpf.libbpf import BPF_ANY, Libbpf, LibbpfError, OpenOpts
from exporter.bpf.requirements import BpfUnavailable


class BpfObject:
    def __init__(self, lib: Libbpf, path: str, btf_path: str | None = None):
        self.lib = lib
        self.path = path
        self._links: list[int] = []
        self._obj = None
        opts = OpenOpts(sz=ctypes.sizeof(OpenOpts))
        if btf_path:
            opts.btf_custom_path = btf_path.encode()
        with lib.captured() as messages:
            obj = lib.bpf_object__open_file(path.encode(), ctypes.byref(opts))
        if not obj:
            err = ctypes.get_errno()
            raise LibbpfError(err, f"open {path}: {os.strerror(err)}{_tail(messages)}")
        self._obj = obj

    def set_config(self, section: str, data: bytes) -> None:
        """Set a read-only data section (``const volatile`` globals) before load."""
        m = self._map(section)
        size = self.lib.bpf_map__value_size(m)
        if size != len(data):
            raise LibbpfError(0, f"{self.path}: {section} is {size} bytes, the config {len(data)}")
        buf = ctypes.create_string_buffer(data, len(data))
        self.lib.check(self.lib.bpf_map__set_initial_value(m, buf, len(data)), f"set {section}")

    def set_max_entries(self, name: str, n: int) -> None:
        self.lib.check(self.lib.bpf_map__set_max_entries(self._map(name), n), f"resize map {name}")

    def load(self) -> None:
        """Relocate (CO-RE) and verify; a refusal carries libbpf's last lines."""
        with self.lib.captured() as messages:
            ret = self.lib.bpf_object__load(self._obj)
        if ret < 0:
            raise LibbpfError(-ret, f"load {os.path.basename(self.path)}: {os.strerror(-ret)}{_tail(messages)}")

    def map_fd(self, name: str) -> int:
        return self.lib.check(self.lib.bpf_map__fd(self._map(name)), f"map {name}")

    def attach_iter(self, program: str) -> int:
        """Attach an iterator program; returns its link's fd (owned here)."""
        link = self.lib.check_ptr(self.lib.bpf_program__attach_iter(self._program(program), None),
                                  f"attach iterator {program}")
        self._links.append(link)
        return self.lib.bpf_link__fd(link)

    def attach_perf_event(self, program: str, perf_fd: int) -> None:
        """Attach to an opened perf event; the link then owns perf_fd (libbpf closes it)."""
        try:
            link = self.lib.check_ptr(self.lib.bpf_program__attach_perf_event(self._program(program), perf_fd),
                                      f"attach {program}")
        except LibbpfError:
            os.close(perf_fd)
            raise
        self._links.append(link)

    def iter_create(self, link_fd: int) -> int:
        """A new iterator instance: each read() of it runs the program over the next tasks."""
        return self.lib.check(self.lib.bpf_iter_create(link_fd), "bpf_iter_create")

    def lookup(self, fd: int, key: ctypes.Structure | ctypes.Array, value) -> bool:
        ret = self.lib.bpf_map_lookup_elem(fd, ctypes.byref(key), ctypes.byref(value))
        if ret == -2:  # ENOENT
            return False
        self.lib.check(ret, "bpf_map_lookup_elem")
        return True

    def update(self, fd: int, key, value) -> None:
        self.lib.check(self.lib.bpf_map_update_elem(fd, ctypes.byref(key), ctypes.byref(value), BPF_ANY),
                       "bpf_map_update_elem")

    def delete(self, fd: int, key) -> bool:
        ret = self.lib.bpf_map_delete_elem(fd, ctypes.byref(key))
        if ret == -2:
            return False
        self.lib.check(ret, "bpf_map_delete_elem")
        return True

    def keys(self, fd: int, key_type) -> list:
        """Every key of a hash map (a snapshot: entries may come and go meanwhile)."""
        out, prev, key = [], None, key_type()
        while True:
            ret = self.lib.bpf_map_get_next_key(fd, ctypes.byref(prev) if prev is not None else None,
                                                ctypes.byref(key))
            if ret == -2:
                return out
            self.lib.check(ret, "bpf_map_get_next_key")
            out.append(key)
            prev, key = key, key_type()

    def close(self) -> None:
        """Destroy every link (detaching the programs), then the object (programs, maps, BTF)."""
        while self._links:
            self.lib.bpf_link__destroy(self._links.pop())
        if self._obj:
            self.lib.bpf_object__close(self._obj)
            self._obj = None

    def _program(self, name: str) -> int:
        return self.lib.check_ptr(self.lib.bpf_object__find_program_by_name(self._obj, name.encode()),
                                  f"{self.path}: program {name}")

    def _map(self, name: str) -> int:
        return self.lib.check_ptr(self.lib.bpf_object__find_map_by_name(self._obj, name.encode()),
                                  f"{self.path}: map {name}")

    def __enter__(self) -> "BpfObject":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class Source:
    """A BPF source that owns one BpfObject (``self._obj``): close() and the with block."""

    _obj: BpfObject | None = None

    @contextlib.contextmanager
    def opening(self, what: str):
        """Around the open: on any failure, free what was made; libbpf's and the
        kernel's refusals become BpfUnavailable naming *what* was needed."""
        try:
            yield
        except (LibbpfError, OSError) as exc:
            self.close()
            raise BpfUnavailable([f"{what}: {exc}"]) from exc
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        if self._obj is not None:
            self._obj.close()
            self._obj = None

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _tail(messages: list[str], n: int = 6) -> str:
    """The last lines libbpf printed: where the verifier or the relocation gave up."""
    lines = [m for m in messages if m.strip()]
    return ("\n  " + "\n  ".join(lines[-n:])) if lines else ""
