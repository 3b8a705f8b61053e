"""`vma-exporter diff` and `snapshot`, and the per-area maps parser behind them.

Real processes that the tests start grow between the two reads; saved
snapshots in tests/fixtures/cli/snapshots pin the exact output (pid 4242 ten
seconds later: 20 more maps of its shm object, libssl loaded, a deleted plugin
unmapped, one anonymous area freed and another split by mprotect).
"""

import json
import os
import time
import uuid

import pytest
from helpers.cli import (
    FIXTURE,
    cli,
    golden,
    run_cli,
    skip_unless_pid1_maps_unreadable,
    unused_pid,
)
from helpers.patterns import pattern_process
from helpers.workload import Workload, kernel_map_areas

from exporter.cli import main
from exporter.procfs import ParseError
from exporter.procfs.maps import Classifier, parse_maps
from exporter.procfs.maps_areas import iter_areas, parse_areas

SNAPS = os.path.join(FIXTURE, "snapshots")


# --- the per-area parser (procfs/maps.py) ------------------------------------

PARSER_CASES = [
    # (line, start, end, perms, offset, inode, name, kind)
    (b"7f3e30000000-7f3e30021000 rw-p 00000000 00:00 0 ", 0x7F3E30000000, 0x7F3E30021000, "rw-p", 0, 0, "", "anon"),
    (b"55d0cb000000-55d0cb021000 rw-p 00000000 00:00 0                          [heap]",
     0x55D0CB000000, 0x55D0CB021000, "rw-p", 0, 0, "[heap]", "heap"),
    (b"7f3e10028000-7f3e10154000 r-xp 00028000 fe:01 1318                       /usr/lib/libc.so.6",
     0x7F3E10028000, 0x7F3E10154000, "r-xp", 0x28000, 1318, "/usr/lib/libc.so.6", "file"),
    (b"7f0000000000-7f0000001000 rw-s 00000000 00:1a 77                         /dev/shm/a b (deleted)",
     0x7F0000000000, 0x7F0000001000, "rw-s", 0, 77, "/dev/shm/a b (deleted)", "shm"),
    (b"100000000-100200000 rw-s 00000000 00:2f 500                              /dev/hugepages/rtemap_0",
     0x100000000, 0x100200000, "rw-s", 0, 500, "/dev/hugepages/rtemap_0", "hugetlb"),
    (b"7f0000000000-7f0000001000 rw-p 00000000 00:00 0                          [anon:arena]",
     0x7F0000000000, 0x7F0000001000, "rw-p", 0, 0, "[anon:arena]", "anon"),
]


@pytest.mark.parametrize("line, start, end, perms, offset, inode, name, kind", PARSER_CASES)
def test_parse_areas_reads_every_field(line, start, end, perms, offset, inode, name, kind):
    (area,) = parse_areas(line + b"\n", Classifier(["/dev/hugepages"]))
    assert (area.start, area.end, area.perms, area.offset, area.inode, area.name, area.kind) == \
        (start, end, perms, offset, inode, name, kind)
    assert area.size == end - start


def test_parse_areas_agrees_with_the_summary_count_and_kinds():
    with open(os.path.join(FIXTURE, "proc", "4242", "maps"), "rb") as f:
        data = f.read()
    areas = parse_areas(data)
    summary = parse_maps(data)
    assert len(areas) == summary.areas == 51, "[vsyscall] is left out, as the kernel's count does"
    kinds = {k: sum(1 for a in areas if a.kind == k) for k in summary.by_kind}
    assert kinds == summary.by_kind


def test_iter_areas_joins_lines_split_across_chunks_and_keeps_a_truncated_last_line():
    data = b"".join(line + b"\n" for line, *_ in PARSER_CASES)[:-1]  # no final newline
    whole = parse_areas(data)
    chunked = list(iter_areas([data[i:i + 7] for i in range(0, len(data), 7)]))
    assert chunked == whole and len(whole) == len(PARSER_CASES)


@pytest.mark.parametrize("bad", [b"not a maps line", b"zzzz-0000 rw-p 0 00:00 0", b"1000-2000 rw-p 0 00:00 x"])
def test_parse_areas_rejects_what_is_not_a_maps_line(bad):
    with pytest.raises(ParseError, match="not a maps line"):
        parse_areas(bad + b"\n")


# --- exact output over saved snapshots ----------------------------------------

def test_diff_of_two_snapshots_is_exact(capsys):
    code, out, err = run_cli(capsys, "diff", "--from", f"{SNAPS}/before.snap", "--to", f"{SNAPS}/after.snap")
    assert code == 0, err
    golden("diff.txt", out)
    lines = out.splitlines()
    assert lines[0] == "pid 4242 (ingest worker): 51 -> 74 map areas (+23) in 10.0 s, +2.3/s"
    grew = lines[lines.index("GREW") + 2].split()
    assert grew[:3] == ["+20", "30", "50"] and grew[-1] == "/dev/shm/ring-buffer", "the shm object leads"


def test_diff_json_of_two_snapshots_is_exact(capsys, monkeypatch):
    # Relative paths: the JSON names its sources, and the golden must not depend on the clone's path.
    monkeypatch.chdir(os.path.dirname(SNAPS))
    code, out, _ = run_cli(capsys, "diff", "--from", "snapshots/before.snap", "--to", "snapshots/after.snap",
                           "--json")
    assert code == 0
    golden("diff.json", out)
    data = json.loads(out)
    assert data["map_areas_delta"] == 23 == sum(c["delta"] for c in data["changes"])
    first = data["changes"][0]
    assert (first["kind"], first["object"], first["delta"], first["bytes_delta"]) == \
        ("shm", "/dev/shm/ring-buffer", 20, 20 * 4096)
    anon = next(c for c in data["changes"] if c["kind"] == "anon")
    assert (anon["delta"], anon["added"], anon["removed"]) == (0, 2, 2), "a split and a free: same count"


def test_diff_accepts_plain_copies_of_maps_files(capsys):
    code, out, _ = run_cli(capsys, "diff", "--from", f"{SNAPS}/maps-before.txt", "--to",
                           f"{SNAPS}/maps-after.txt", "--examples", "1", "--limit", "1")
    assert code == 0
    lines = out.splitlines()
    assert lines[0] == f"{SNAPS}/maps-before.txt -> {SNAPS}/maps-after.txt: 51 -> 74 map areas (+23)"
    assert lines[1] == "", "no time or limit without a snapshot header"
    assert "new: 7f3e201e0000-7f3e201e1000 rw-s 4.0 KiB (+19 more)" in out
    assert "... and 1 more (--limit)" in out


def test_diff_refuses_a_file_that_is_not_maps(capsys, tmp_path):
    bad = tmp_path / "notes.txt"
    bad.write_text("hello\n")
    code, _, err = run_cli(capsys, "diff", "--from", str(bad), "--to", f"{SNAPS}/after.snap")
    assert code == 1
    assert f"{bad}: not a snapshot or maps file" in err
    code, _, err = run_cli(capsys, "diff", "--from", str(tmp_path / "missing"), "--to", f"{SNAPS}/after.snap")
    assert code == 1 and "cannot read" in err and "missing" in err


@pytest.mark.parametrize("argv, message", [
    ([], "nothing to compare"),
    (["--to", f"{SNAPS}/after.snap"], "--to needs --from"),
    (["1", "--from", f"{SNAPS}/before.snap", "--to", f"{SNAPS}/after.snap"], "not both"),
    (["1", "--examples", "-1"], "--examples must be 0 or more"),
])
def test_diff_usage_errors_exit_2(capsys, argv, message):
    code, _, err = run_cli(capsys, "diff", *argv)
    assert code == 2
    assert message in err


@pytest.mark.parametrize("argv", [["abc"], ["0"], ["1", "--interval", "0"], ["1", "--interval", "x"]])
def test_diff_bad_values_are_rejected_by_the_parser(capsys, argv):
    with pytest.raises(SystemExit) as exc:
        main(["diff", *argv])
    assert exc.value.code == 2
    assert "diff: error:" in capsys.readouterr().err


# --- real processes -------------------------------------------------------------

def test_diff_of_a_leaking_process_puts_its_shm_object_first():
    name = f"/vma-diff-{uuid.uuid4().hex[:8]}"
    with Workload("leak", name, 200) as leak:
        result = cli("diff", str(leak.pid), "--interval", "1.5", "--json")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    first = data["changes"][0]
    assert (first["kind"], first["object"]) == ("shm", "/dev/shm" + name)
    # 200 maps a second for 1.5 s; the kernel timing is loose on a loaded machine,
    # but at least one batch lands and every new area is one page of the object.
    assert first["delta"] >= 200
    assert first["delta"] == data["map_areas_delta"], "nothing else changed in the leaker"
    assert first["bytes_delta"] == first["delta"] * os.sysconf("SC_PAGE_SIZE")
    assert all(e["perms"] == "rw-s" for e in first["added_examples"]) and len(first["added_examples"]) == 3
    assert data["rate_per_second"] > 0 and data["seconds_to_limit"] > 0


def test_diff_of_a_growing_process_shows_anonymous_growth_in_text():
    with Workload("grow", "100", "0.2") as grower:
        result = cli("diff", str(grower.pid), "--interval", "1")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith(f"pid {grower.pid} (workload): ")
    counts = lines[0].split(": ")[1].split()
    before, after = int(counts[0]), int(counts[2])
    assert after - before >= 100
    row = lines[lines.index("GREW") + 2].split()
    assert row[-2:] == ["anon", "[anon]"] and int(row[0]) >= 100
    assert "at this rate the limit is reached in about" in lines[1]
    assert "\x1b" not in result.stdout


def test_diff_totals_anonymous_growth_by_region_and_shape():
    """Incident 003 (docs/incidents.md) growing: not "+N anon" and a list of examples, but where and what shape."""
    with pattern_process("carve-grow", 20000, 2000) as carver:
        lo, hi = (int(x, 16) for x in carver.detail.split("=")[1].split("-"))
        result = cli("diff", str(carver.pid), "--interval", "1.5", "--json")
        text = cli("diff", str(carver.pid), "--interval", "1.5").stdout
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    first = data["regions"][0]
    assert (first["pattern"], first["label"]) == ("anon_shape", "4KiB rw-p/---p alternating")
    assert first["delta"] >= 2000 and first["delta"] % 2 == 0, "2000 pages carved a second: 2 areas each"
    assert lo <= int(first["start"], 16) < int(first["end"], 16) <= hi, "inside the reservation"
    assert first["delta"] == data["map_areas_delta"], "nothing else changed"
    assert data["patterns_now"][0]["label"] == "4KiB rw-p/---p alternating"
    lines = text.splitlines()
    row = lines[lines.index("BY REGION AND SHAPE") + 1]
    assert row.startswith("  +") and " areas inside 7f" in row and row.endswith(": 4KiB rw-p/---p alternating (anon_shape)")


def test_diff_of_a_process_that_stopped_growing_still_says_what_holds_its_areas():
    with pattern_process("carve", 3000) as carver:
        result = cli("diff", str(carver.pid), "--interval", "0.2")
    lines = result.stdout.splitlines()
    assert "no map area changed" in lines
    assert lines[lines.index("WHAT HOLDS THE AREAS NOW") + 1].startswith(
        "  6000 areas (99.") and lines[-1].endswith("anon_shape 4KiB rw-p/---p alternating")


def test_snapshot_is_the_maps_file_and_diff_compares_it_with_now(tmp_path):
    name = f"/vma-snap-{uuid.uuid4().hex[:8]}"
    with Workload("areas", 100) as still, Workload("leak", name, 100) as leak:
        snap = cli("snapshot", str(still.pid))
        assert snap.returncode == 0, snap.stderr
        header, body = snap.stdout.split("\n", 1)
        meta = json.loads(header[len("# vma-exporter snapshot "):])
        assert (meta["pid"], meta["comm"], meta["version"]) == (still.pid, "workload", 1)
        with open(f"/proc/{still.pid}/maps") as f:
            assert body == f.read(), "a static process: the body is its maps file byte for byte"
        assert sum(1 for line in body.splitlines() if not line.endswith("[vsyscall]")) == kernel_map_areas(still.pid)

        saved = tmp_path / "leak.snap"
        assert cli("snapshot", str(leak.pid), "-o", str(saved)).returncode == 0
        count = kernel_map_areas(leak.pid)
        deadline = time.monotonic() + 30
        while kernel_map_areas(leak.pid) == count and time.monotonic() < deadline:
            time.sleep(0.1)  # poll: the leaker adds its next batch within a second
        result = cli("diff", "--from", str(saved), str(leak.pid), "--json")
        assert result.returncode == 0, result.stderr
        data = json.loads(result.stdout)
        assert data["changes"][0]["object"] == "/dev/shm" + name and data["changes"][0]["delta"] >= 100

        other = cli("diff", "--from", str(saved), str(still.pid))
        assert other.returncode == 1
        assert "not the same process" in other.stderr


def test_diff_and_snapshot_of_a_missing_pid_exit_1_with_a_clear_error():
    missing = unused_pid()
    for argv in (["diff", str(missing), "--interval", "0.1"], ["snapshot", str(missing)]):
        result = cli(*argv)
        assert result.returncode == 1
        assert f"no process with pid {missing}" in result.stderr
        assert "Traceback" not in result.stderr


def test_diff_of_an_unreadable_process_names_cap_sys_ptrace():
    skip_unless_pid1_maps_unreadable()
    result = cli("diff", "1", "--interval", "0.1")
    assert result.returncode == 1
    assert "cannot read /proc/1/maps: permission denied" in result.stderr
    assert "CAP_SYS_PTRACE" in result.stderr


def test_snapshot_to_an_unwritable_place_fails_cleanly(capsys, tmp_path):
    target = tmp_path / "missing-dir" / "x.snap"
    code, out, err = run_cli(capsys, "snapshot", str(os.getpid()), "-o", str(target))
    assert code == 1 and out == ""
    assert f"cannot write {target}: No such file or directory" in err
    code, _, _ = run_cli(capsys, "snapshot", str(os.getpid()), "-o", str(tmp_path / "ok.snap"))
    assert code == 0 and os.listdir(tmp_path) == ["ok.snap"], "no temporary file left behind"
