"""One line each: what a pattern usually means, and what to do about it."""

from exporter.patterns import Pattern

_ADVICE = {
    "object": ("the same object is mapped again and again without munmap: every mmap of it adds an area",
               "find the mmap without its munmap (strace -f -e trace=mmap,munmap -p PID); map once and reuse, "
               "or unmap after use"),
    "family": ("numbered files of one family, each mapped once or a few times (DPDK maps one file per hugepage)",
               "use fewer, larger files (1 GiB hugepages; DPDK --single-file-segments), or raise "
               "vm.max_map_count to fit them"),
    "directory": ("many files of one directory, each mapped once or a few times (a search index's segments, "
                  "a cache)",
                  "merge or close old files (segment merging, a smaller cache), or raise vm.max_map_count to fit "
                  "the working set"),
    "alternating": ("one reservation carved by mprotect or MAP_FIXED into pages of alternating protection (guard "
                    "pages, a JIT, a custom allocator)",
                    "change protections by ranges, not page by page; keep neighbours with the same protection "
                    "together so they merge"),
    "holes": ("munmap in the middle of mappings left separate pieces: each piece is an area (an allocator "
              "returning pages one by one)",
              "unmap whole mappings, or give memory back with madvise(MADV_DONTNEED), which splits nothing"),
    "areas": ("many anonymous areas of one size and protection: one mmap per allocation (malloc above "
              "M_MMAP_THRESHOLD, a pool of buffers)",
              "pool the allocations, or raise the mmap threshold (mallopt M_MMAP_THRESHOLD) so malloc uses its heap"),
    "thread_stacks": ("a stack and its guard page per thread: the thread pool is big",
                      "shrink the pool or the stack size (ulimit -s, pthread_attr_setstacksize); each thread costs "
                      "2 areas"),
    "exited_thread_stacks": ("more thread stacks than threads: threads exited without pthread_join keep their "
                             "stacks mapped",
                             "join or detach every thread (pthread_join, pthread_detach)"),
    "malloc_arenas": ("glibc malloc arenas: 64 MiB heaps, up to 8 arenas per CPU core, 2 areas each",
                      "cap them with MALLOC_ARENA_MAX=2 (or 4) in the environment"),
    "libraries": ("shared libraries, 4 to 6 areas each (one per ELF segment): how every process looks",
                  "nothing, unless this count grows: then look at what is loaded (dlopen in a loop?)"),
    "anon_name": ("anonymous areas the program named itself (prctl PR_SET_VMA_ANON_NAME)",
                  "the name says which part of the program maps them"),
}


def _libraries(label: str) -> bool:
    return any(part in label for part in ("/lib/", "/lib64/", "/lib32/")) or ".so" in label


def kind_of(p: Pattern) -> str:
    """The advice key: the pattern, or for an anonymous shape its layout."""
    if p.pattern in ("directory", "family") and _libraries(p.label):
        return "libraries"
    if p.pattern != "anon_shape":
        return p.pattern
    if p.label.endswith("alternating"):
        return "alternating"
    if p.label.endswith("pieces with holes"):
        return "holes"
    return "areas"


def advice(p: Pattern) -> tuple[str, str]:
    """(what it usually means, what to do)."""
    return _ADVICE.get(kind_of(p), ("", ""))
