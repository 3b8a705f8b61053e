"""`vma-exporter explain PID`: exact output over the fixture node, and real processes
of each pattern (tests/helpers/patterns.c) against what /proc/PID/maps shows.

Fixture node (tests/fixtures/cli): 4242 maps one shm object 30 times, 5150 is
DPDK-like (rtemap files on hugetlbfs), 7003 carved a PROT_NONE reservation
into 400 alternating pages (docs/incidents.md, incident 003). Expected output lives in
tests/fixtures/cli/expected; `python3 -m pytest --update-golden` rewrites it (then review).
"""

import json
import uuid

import pytest
from helpers.cli import ROOTS, cli, golden, run_cli, skip_unless_pid1_maps_unreadable, unused_pid
from helpers.patterns import maps_lines, pattern_process

from exporter.cli import main


@pytest.mark.parametrize("pid", [7003, 4242, 5150])
def test_explain_over_the_fixture_node_is_exact(capsys, pid):
    code, out, err = run_cli(capsys, "explain", str(pid), *ROOTS)
    assert code == 0, err
    golden(f"explain-{pid}.txt", out)


def test_explain_puts_the_count_against_the_limit_first_then_the_patterns(capsys):
    _, out, _ = run_cli(capsys, "explain", "7003", *ROOTS)
    lines = out.splitlines()
    assert lines[0] == "pid 7003 (carver): 420 of max_map_count 65530 (0.6%), headroom 65110"
    first = next(i for i, line in enumerate(lines) if line.startswith("1. "))
    assert lines[first] == "1. 399 areas (95.0%): anon_shape 4KiB rw-p/---p alternating"
    assert lines[first + 1].startswith("   region 7f4c40001000-7f4c40190000 (1.6 MiB)")
    assert "/opt/carver/bin/carver" not in out, "the binary's 5 areas are not the cause"


def test_explain_json_over_the_fixture_node(capsys):
    code, out, _ = run_cli(capsys, "explain", "5150", *ROOTS, "--json")
    assert code == 0
    golden("explain-5150.json", out)
    data = json.loads(out)
    assert (data["map_areas"], data["max_map_count"], data["headroom"]) == (24, 65530, 65506)
    (p,) = data["patterns"]
    assert (p["pattern"], p["label"], p["map_areas"]) == ("family", "/dev/hugepages/rtemap_*", 8)
    assert p["means"] and p["action"]


def test_explain_of_a_missing_pid_exits_1_and_bad_usage_exits_2(capsys):
    missing = unused_pid()
    result = cli("explain", str(missing))
    assert result.returncode == 1
    assert f"no process with pid {missing}" in result.stderr and "Traceback" not in result.stderr
    code, _, err = run_cli(capsys, "explain", "2", *ROOTS)
    assert code == 1 and "kernel thread" in err
    for argv in (["explain"], ["explain", "abc"], ["explain", "0"]):
        with pytest.raises(SystemExit) as exc:
            main(argv)
        assert exc.value.code == 2


def test_explain_of_an_unreadable_process_names_cap_sys_ptrace():
    skip_unless_pid1_maps_unreadable()
    result = cli("explain", "1")
    assert result.returncode == 1
    assert "permission denied" in result.stderr and "CAP_SYS_PTRACE" in result.stderr


# --- real processes ----------------------------------------------------------------

def explain_json(pid: int) -> dict:
    result = cli("explain", str(pid), "--json")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def region_of(lines) -> tuple[str, str]:
    return f"{min(s for s, *_ in lines):x}", f"{max(e for _, e, *_ in lines):x}"


def test_explain_a_carved_reservation():
    with pattern_process("carve", 3000) as p:
        lo, hi = (int(x, 16) for x in p.detail.split("=")[1].split("-"))
        areas = maps_lines(p.pid)
        data = explain_json(p.pid)
    first = data["patterns"][0]
    assert (first["pattern"], first["label"]) == ("anon_shape", "4KiB rw-p/---p alternating")
    # What maps shows: 6001 pages inside the reservation, each after one of the other protection
    # except the first; the pattern holds those that follow their neighbour.
    inside = [a for a in areas if lo <= a[0] and a[1] <= hi]
    assert len(inside) == 6001 and all(a[1] - a[0] == 4096 for a in inside)
    assert first["map_areas"] == 6000
    assert (first["region"]["start"], first["region"]["end"]) == region_of(inside[1:])
    assert data["map_areas"] == len(areas)


def test_explain_pieces_left_by_munmap():
    with pattern_process("munmap", 2000) as p:
        first_piece = int(p.detail.split("=")[1], 16)
        areas = maps_lines(p.pid)
        data = explain_json(p.pid)
    pieces = [a for a in areas if first_piece <= a[0] < first_piece + 2 * 2000 * 4096]
    assert len(pieces) == 2000 and all(a[1] - a[0] == 4096 and a[2] == "rw-p" for a in pieces)
    first = data["patterns"][0]
    assert (first["pattern"], first["label"]) == ("anon_shape", "4KiB rw-p pieces with holes")
    assert first["map_areas"] == 1999, "every piece after a hole of the same shape"
    assert (first["region"]["start"], first["region"]["end"]) == region_of(pieces[1:])


def test_explain_thread_stacks_for_parked_threads():
    with pattern_process("threads", 1000) as p:
        areas = maps_lines(p.pid)
        data = explain_json(p.pid)
    assert data["threads"] == 1000
    stacks = [(a, b) for a, b in zip(areas, areas[1:])
              if a[3] == b[3] == "" and a[2] == "---p" and a[1] - a[0] == 4096 and a[1] == b[0]
              and b[2] == "rw-p" and b[1] - b[0] == 8 << 20]
    assert len(stacks) == 999, "one stack and guard per thread but the main one"
    first = data["patterns"][0]
    assert (first["pattern"], first["label"], first["stacks"]) == ("thread_stacks", "8MiB rw-p + 4KiB guard", 999)
    assert first["map_areas"] == 2 * 999
    assert (first["region"]["start"], first["region"]["end"]) == region_of([x for pair in stacks for x in pair])


def test_explain_stacks_of_threads_never_joined():
    with pattern_process("unjoined", 40) as p:
        data = explain_json(p.pid)
        text = cli("explain", str(p.pid)).stdout
    assert data["threads"] == 1
    first = data["patterns"][0]
    assert (first["pattern"], first["stacks"]) == ("exited_thread_stacks", 40)
    assert "40 stacks for 1 thread" in text and "never joined" in text


def test_explain_files_of_one_directory_each_mapped_once(tmp_path):
    with pattern_process("files", str(tmp_path), 3000) as p:
        areas = maps_lines(p.pid)
        data = explain_json(p.pid)
    mine = [a for a in areas if a[3].startswith(f"{tmp_path}/")]
    assert len(mine) == 3000 and len({a[3] for a in mine}) == 3000, "3000 files, each mapped once"
    first = data["patterns"][0]
    assert (first["pattern"], first["label"], first["map_areas"]) == ("directory", f"{tmp_path}/", 3000)
    assert (first["region"]["start"], first["region"]["end"]) == region_of(mine)


def test_explain_one_shm_object_mapped_again_and_again():
    name = f"/vma-explain-{uuid.uuid4().hex[:8]}"
    with pattern_process("shm", name, 1500) as p:
        areas = maps_lines(p.pid)
        data = explain_json(p.pid)
    mine = [a for a in areas if a[3] == f"/dev/shm{name}"]
    first = data["patterns"][0]
    assert (first["pattern"], first["label"], first["map_areas"]) == ("object", f"/dev/shm{name}", 1500)
    assert len(mine) == 1500 and (first["region"]["start"], first["region"]["end"]) == region_of(mine)


def test_explain_malloc_arenas():
    with pattern_process("arenas", 8) as p:
        areas = maps_lines(p.pid)
        data = explain_json(p.pid)
    heap = 64 << 20
    heaps = [(a, b) for a, b in zip(areas, areas[1:]) if a[3] == b[3] == "" and a[2] == "rw-p" and b[2] == "---p"
             and a[0] % heap == 0 and b[1] == a[0] + heap]
    got = {x["pattern"]: x for x in data["patterns"]}
    if not heaps:
        pytest.skip("glibc made no arena heap here (one CPU?)")
    assert got["malloc_arenas"]["map_areas"] == 2 * len(heaps)
    assert got["malloc_arenas"]["label"] == "64MiB heaps rw-p + ---p"
    assert "MALLOC_ARENA_MAX" in got["malloc_arenas"]["action"]


def test_explain_text_names_the_pattern_and_what_to_do():
    with pattern_process("carve", 1000) as p:
        result = cli("explain", str(p.pid))
    assert result.returncode == 0, result.stderr
    assert "anon_shape 4KiB rw-p/---p alternating" in result.stdout
    assert "means: one reservation carved by mprotect or MAP_FIXED" in result.stdout
    assert "\x1b" not in result.stdout, "no colour into a pipe"
