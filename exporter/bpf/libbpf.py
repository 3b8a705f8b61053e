"""ctypes prototypes of the few libbpf.so.1 functions the BPF source calls.

libbpf (Debian ``libbpf1``) is the only runtime need: it opens the committed
CO-RE object, relocates it against the running kernel's BTF, loads it, and
attaches it. Signatures follow libbpf's ``libbpf.h`` and ``bpf.h`` (v1.1, the
version Debian 12 ships; every call here exists since v0.8). libbpf 1.x
reports errors as a negative errno from functions returning ``int`` and as
NULL with ``errno`` set from those returning a pointer; both become
``LibbpfError`` (an OSError) here.

libbpf's own messages (the verifier log among them) go through a print
callback: :func:`captured` collects them so that a failure can say why.
"""

import contextlib
import ctypes
import errno as errno_mod
import logging
import os

log = logging.getLogger(__name__)

LIBRARY = "libbpf.so.1"

c_void_p, c_int, c_char_p, c_size_t, c_uint32, c_uint64 = (
    ctypes.c_void_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_size_t, ctypes.c_uint32, ctypes.c_uint64)

# name: (restype, argtypes)
_PROTOTYPES = {
    "libbpf_set_print": (c_void_p, [c_void_p]),
    "libbpf_num_possible_cpus": (c_int, []),
    "bpf_object__open_file": (c_void_p, [c_char_p, c_void_p]),
    "bpf_object__load": (c_int, [c_void_p]),
    "bpf_object__close": (None, [c_void_p]),
    "bpf_object__find_program_by_name": (c_void_p, [c_void_p, c_char_p]),
    "bpf_object__find_map_by_name": (c_void_p, [c_void_p, c_char_p]),
    "bpf_map__fd": (c_int, [c_void_p]),
    "bpf_map__set_max_entries": (c_int, [c_void_p, c_uint32]),
    "bpf_map__value_size": (c_uint32, [c_void_p]),
    "bpf_map__set_initial_value": (c_int, [c_void_p, c_void_p, c_size_t]),
    "bpf_program__attach_iter": (c_void_p, [c_void_p, c_void_p]),
    "bpf_program__attach_perf_event": (c_void_p, [c_void_p, c_int]),
    "bpf_link__fd": (c_int, [c_void_p]),
    "bpf_link__destroy": (c_int, [c_void_p]),
    "bpf_iter_create": (c_int, [c_int]),
    "bpf_map_lookup_elem": (c_int, [c_int, c_void_p, c_void_p]),
    "bpf_map_update_elem": (c_int, [c_int, c_void_p, c_void_p, c_uint64]),
    "bpf_map_delete_elem": (c_int, [c_int, c_void_p]),
    "bpf_map_get_next_key": (c_int, [c_int, c_void_p, c_void_p]),
}

BPF_ANY = 0  # bpf_map_update_elem flags


class OpenOpts(ctypes.Structure):
    """struct bpf_object_open_opts up to btf_custom_path (libbpf.h).

    ``sz`` tells libbpf how much of the struct the caller knows, so a prefix
    is valid with every later libbpf."""

    _fields_ = [
        ("sz", c_size_t),
        ("object_name", c_char_p),
        ("relaxed_maps", ctypes.c_bool),
        ("pin_root_path", c_char_p),
        ("_attach_prog_fd", c_uint32),  # removed field, kept as padding
        ("kconfig", c_char_p),
        ("btf_custom_path", c_char_p),
    ]


class LibbpfError(OSError):
    """A libbpf call failed; ``errno`` is the kernel's or libbpf's error."""


# libbpf_print_fn_t: int (*)(enum libbpf_print_level, const char *fmt, va_list ap)
_PRINT_FN = ctypes.CFUNCTYPE(c_int, c_int, c_char_p, c_void_p)
_LEVELS = {0: logging.WARNING, 1: logging.INFO, 2: logging.DEBUG}


class Libbpf:
    """The loaded library with typed functions; one per process is enough."""

    def __init__(self, name: str = LIBRARY):
        self.name = name
        self.lib = ctypes.CDLL(name, use_errno=True)  # OSError when missing: the caller says what to install
        for fn, (restype, argtypes) in _PROTOTYPES.items():
            f = getattr(self.lib, fn)
            f.restype, f.argtypes = restype, argtypes
        libc = ctypes.CDLL(None, use_errno=True)
        self._vsnprintf = libc.vsnprintf
        self._vsnprintf.restype = c_int
        self._vsnprintf.argtypes = [c_char_p, c_size_t, c_char_p, c_void_p]
        self.messages: list[str] | None = None
        self._print = _PRINT_FN(self._on_print)  # kept referenced: libbpf holds the pointer
        self.lib.libbpf_set_print(ctypes.cast(self._print, c_void_p))

    def _on_print(self, level: int, fmt: bytes, ap: int) -> int:
        if level > 1 and not log.isEnabledFor(logging.DEBUG):
            return 0  # libbpf's debug chatter: hundreds of lines per load
        # A va_list is read once, so the buffer must hold the whole message; the
        # verifier's log (one message) is where a refusal is explained, at its end.
        buf = ctypes.create_string_buffer(16 << 20 if b"LOAD LOG" in fmt else 8192)
        self._vsnprintf(buf, len(buf), fmt, ap)
        text = buf.value.decode("utf-8", "replace").rstrip("\n")
        if self.messages is not None and level <= 1:
            self.messages.append(text)
        log.log(_LEVELS.get(level, logging.DEBUG), "%s", text)  # libbpf prefixes its lines itself
        return 0

    @contextlib.contextmanager
    def captured(self):
        """Collect libbpf's warnings and info lines for the duration."""
        self.messages = []
        try:
            yield self.messages
        finally:
            self.messages = None

    def __getattr__(self, fn: str):
        return getattr(self.lib, fn)

    def check(self, ret: int, what: str) -> int:
        """An int-returning call: negative is -errno."""
        if ret < 0:
            raise LibbpfError(-ret, f"{what}: {os.strerror(-ret)}")
        return ret

    def check_ptr(self, ptr: int | None, what: str) -> int:
        """A pointer-returning call: NULL with errno set."""
        if not ptr:
            err = ctypes.get_errno() or errno_mod.EINVAL
            raise LibbpfError(err, f"{what}: {os.strerror(err)}")
        return ptr


_shared: dict[str, Libbpf] = {}


def library(name: str = LIBRARY) -> Libbpf:
    """The process's Libbpf for *name* (loaded on first use)."""
    if name not in _shared:
        _shared[name] = Libbpf(name)
    return _shared[name]
