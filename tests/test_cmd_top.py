"""`vma-exporter top`: exact output over a fixture node, and real processes ranked.

Fixture node (tests/fixtures/cli): pid 1 systemd, 2 a kernel thread, 4242 a
worker mapping one shm object 30 times, 5150 a DPDK-like process on
hugetlbfs, 6000 a zombie, 7003 a reservation carved into 400 pages. Expected output lives in
tests/fixtures/cli/expected; `python3 -m pytest --update-golden` rewrites it from the current code
(then review the diff).
"""

import json
import os
import pty
import subprocess
import sys
import time
import uuid

import pytest
from helpers.cli import (
    REPO,
    ROOTS,
    cli,
    golden,
    run_cli,
)
from helpers.patterns import pattern_process
from helpers.workload import Workload, kernel_map_areas

from exporter.cli import main

WORKLOAD_CONFIG = 'process_names:\n  - name: "wl"\n    comm: [workload]\n'


def test_top_over_the_fixture_node_is_exact(capsys):
    code, out, err = run_cli(capsys, "top", *ROOTS)
    assert code == 0, err
    golden("top.txt", out)
    # What the golden file pins down, said plainly: ranked by map areas; what
    # holds them: the carved reservation's shape (not its binary), the shm
    # object mapped 30 times, the rtemap family; nothing for systemd.
    lines = out.splitlines()
    header = lines[lines.index("") + 1]
    table = lines[lines.index("") + 2:]
    assert [int(line.split()[0]) for line in table] == [7003, 4242, 5150, 1]
    assert header.split()[-3:] == ["KIND", "HOLDS", "WHAT"]
    assert [line[header.index("KIND"):].split(None, 2) for line in table] == [
        ["anon_shape", "399", "4KiB rw-p/---p alternating"], ["object", "30", "/dev/shm/ring-buffer"],
        ["family", "8", "/dev/hugepages/rtemap_*"], ["-", "-", "-"]]


def test_top_json_over_the_fixture_node_is_exact(capsys):
    code, out, _ = run_cli(capsys, "top", *ROOTS, "--json")
    assert code == 0
    data = json.loads(out)
    assert isinstance(data.pop("timestamp"), float)
    golden("top.json", json.dumps(data, indent=2, sort_keys=True) + "\n")
    assert [p["pid"] for p in data["processes"]] == [7003, 4242, 5150, 1], \
        "kernel thread 2 and zombie 6000 are skipped"
    assert data["processes"][0]["patterns"] == [
        {"pattern": "anon_shape", "label": "4KiB rw-p/---p alternating", "map_areas": 399}]
    first = data["processes"][1]
    assert first["map_areas"] == 51 and first["limit_ratio"] == pytest.approx(51 / 65530)
    assert first["map_areas_by_kind"]["shm"] == 30
    assert data["hugepages"][0] == {"pagesize_bytes": 2 << 20, "total": 1024, "free": 512, "reserved": 8,
                                    "surplus": 0, "usable": 504}


def test_top_flags_before_the_command_are_kept(capsys):
    """`vma-exporter --path.procfs X top` must read X (argparse would reset it)."""
    code, out, _ = run_cli(capsys, *ROOTS, "top")
    assert code == 0
    golden("top.txt", out)


def test_top_limit_shows_the_first_n_and_says_how_many_are_left(capsys):
    code, out, _ = run_cli(capsys, "top", *ROOTS, "-n", "1")
    assert code == 0
    lines = out.splitlines()
    assert lines[-2].split()[0] == "7003"
    assert lines[-1] == "... 3 more (--limit)"


def test_top_honours_the_config_file(capsys, tmp_path):
    config = tmp_path / "targets.yml"
    config.write_text('process_names:\n  - name: "dpdk"\n    comm: [l2fwd]\n')
    code, out, _ = run_cli(capsys, "top", *ROOTS, "--config.file", str(config), "--json")
    assert code == 0
    procs = json.loads(out)["processes"]
    assert [(p["pid"], p["group"]) for p in procs] == [(5150, "dpdk")]
    assert procs[0]["hugetlb_bytes"] == 16 << 20
    assert procs[0]["map_areas_by_kind"]["hugetlb"] == 8, "rtemap files on the hugetlbfs mount of pid 1"


def test_top_bad_config_is_bad_usage(capsys, tmp_path):
    config = tmp_path / "targets.yml"
    config.write_text("process_names: [{name: x, colour: red}]\n")
    code, _, err = run_cli(capsys, "top", *ROOTS, "--config.file", str(config))
    assert code == 2
    assert "config error" in err and "colour" in err


@pytest.mark.parametrize("argv", [["--watch", "0"], ["--watch", "soon"], ["-n", "0"], ["--count", "-1"]])
def test_top_bad_flag_values_exit_2(capsys, argv):
    with pytest.raises(SystemExit) as exc:
        main(["top", *ROOTS, *argv])
    assert exc.value.code == 2
    assert "top: error:" in capsys.readouterr().err


def test_top_watch_prints_frames_with_growth_when_not_a_terminal(capsys):
    code, out, _ = run_cli(capsys, "top", *ROOTS, "--watch", "0.05", "--count", "2")
    assert code == 0
    frames = out.split("every 0.05 s, refresh ")
    assert len(frames) == 3 and frames[0] == ""
    assert "\x1b" not in out, "no escape codes when stdout is not a terminal"
    for n, frame in enumerate(frames[1:], 1):
        assert frame.startswith(f"{n},")
        row = next(line for line in frame.splitlines() if line.startswith("4242 "))
        header = next(line for line in frame.splitlines() if line.lstrip().startswith("PID"))
        growth = row[header.index("AREAS") + len("AREAS"):header.index("GROWTH") + len("GROWTH")].strip()
        # Nothing to compare with on the first refresh; a static fixture does not grow.
        assert growth == ("" if n == 1 else "0")


def test_top_shows_what_holds_the_areas_of_real_processes(tmp_path):
    """KIND and WHAT: the pattern's label, not the binary, for a carved reservation;
    thread stacks checked against the thread count."""
    config = tmp_path / "targets.yml"
    config.write_text('process_names:\n  - name: "p"\n    comm: [patterns]\n')
    with pattern_process("carve", 2000) as carver, pattern_process("unjoined", 30) as quitter:
        data = json.loads(cli("top", "--config.file", str(config), "--json").stdout)
        text = cli("top", "--config.file", str(config)).stdout
    procs = _by_pid(data)
    assert procs[carver.pid]["patterns"][0] == {"pattern": "anon_shape", "label": "4KiB rw-p/---p alternating",
                                                "map_areas": 4000}
    assert procs[quitter.pid]["patterns"][0]["pattern"] == "exited_thread_stacks"
    row = next(line for line in text.splitlines() if line.split() and line.split()[0] == str(carver.pid))
    assert row.split()[-5:] == ["anon_shape", "4000", "4KiB", "rw-p/---p", "alternating"]


def _by_pid(data: dict) -> dict[int, dict]:
    return {p["pid"]: p for p in data["processes"]}


def test_top_ranks_real_processes_by_their_kernel_count(tmp_path):
    config = tmp_path / "targets.yml"
    config.write_text(WORKLOAD_CONFIG)
    shm = f"/vma-top-{uuid.uuid4().hex[:8]}"
    with Workload("areas", 3000) as big, Workload("areas", 1000) as small, Workload("areas", 2000) as mid, \
            Workload("shm", shm, 1500) as mapper:
        result = cli("top", "--config.file", str(config), "--json")
        assert result.returncode == 0, result.stderr
        data = json.loads(result.stdout)
        procs = _by_pid(data)
        ours = [p["pid"] for p in data["processes"] if p["pid"] in {big.pid, small.pid, mid.pid, mapper.pid}]
        assert ours == [big.pid, mid.pid, mapper.pid, small.pid]
        for w in (big, small, mid, mapper):  # static once ready: must equal the kernel's count
            assert procs[w.pid]["map_areas"] == kernel_map_areas(w.pid)
            assert procs[w.pid]["limit_ratio"] == pytest.approx(procs[w.pid]["map_areas"] / data["max_map_count"])
        assert procs[mapper.pid]["top_object"] == "/dev/shm" + shm
        assert procs[mapper.pid]["top_object_map_areas"] == 1500
        # The table shows the same order.
        text = cli("top", "--config.file", str(config)).stdout
        rows = [int(line.split()[0]) for line in text.splitlines() if line.split() and line.split()[0].isdigit()]
        assert [pid for pid in rows if pid in procs and pid in {big.pid, small.pid, mid.pid, mapper.pid}] == ours


def test_top_watch_shows_the_growth_of_a_growing_process(tmp_path):
    config = tmp_path / "targets.yml"
    config.write_text(WORKLOAD_CONFIG)
    with Workload("grow", "100", "0.2") as grower, Workload("areas", 500) as still:
        result = cli("top", "--config.file", str(config), "--watch", "1", "--count", "3", "--json")
        assert result.returncode == 0, result.stderr
        frames = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(frames) == 3
    seen = [_by_pid(f)[grower.pid] for f in frames]
    assert "map_areas_growth" not in seen[0] or seen[0]["map_areas_growth"] is None
    for prev, cur in zip(seen, seen[1:]):
        # Growth is exactly the change between two refreshes, and the grower adds
        # ~100 areas every 0.2 s: well over 100 in a 1 s refresh.
        assert cur["map_areas_growth"] == cur["map_areas"] - prev["map_areas"]
        assert cur["map_areas_growth"] > 100
    assert [_by_pid(f)[still.pid].get("map_areas_growth") for f in frames[1:]] == [0, 0]


def _run_on_pty(argv: list[str], env: dict) -> str:
    """Run the CLI with stdout on a pseudo-terminal; return what it wrote."""
    master, slave = pty.openpty()
    proc = subprocess.Popen([sys.executable, "-m", "exporter", *argv], cwd=REPO, stdout=slave,
                            stderr=subprocess.PIPE, env=env)
    os.close(slave)
    chunks = []
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            data = os.read(master, 65536)
        except OSError:  # EIO: the child closed the terminal
            break
        if not data:
            break
        chunks.append(data)
    proc.wait(timeout=60)
    os.close(master)
    return b"".join(chunks).decode()


@pytest.mark.parametrize("no_color, expect_colour", [(None, True), ("1", False)])
def test_top_colours_only_on_a_terminal_and_honours_no_color(no_color, expect_colour):
    env = {k: v for k, v in os.environ.items() if k not in ("NO_COLOR", "TERM")}
    env["TERM"] = "xterm"
    if no_color:
        env["NO_COLOR"] = no_color
    out = _run_on_pty(["top", *ROOTS], env)
    assert "4242" in out
    assert ("\x1b[" in out) == expect_colour
    piped = cli("top", *ROOTS, env=env).stdout
    assert "4242" in piped and "\x1b[" not in piped


def test_top_watch_redraws_in_place_on_a_terminal():
    env = {k: v for k, v in os.environ.items() if k != "NO_COLOR"}
    env["TERM"] = "xterm"
    out = _run_on_pty(["top", *ROOTS, "--watch", "0.05", "--count", "2"], env)
    # Each refresh homes the cursor and clears the screen, then draws one frame.
    assert out.count("\x1b[H\x1b[2J") == 2
    assert out.count("refresh 1,") == 1 and out.count("refresh 2,") == 1


def test_control_characters_from_a_process_never_reach_the_terminal():
    """A process chooses its comm: an ESC sequence in it is shown escaped, as ps does."""
    from exporter.commands.fmt import printable, table

    evil = "\x1b[2J\x1b[41mEVIL\x9b"
    assert printable(evil) == "\\x1b[2J\\x1b[41mEVIL\\x9b"
    lines = table(["COMM", "OBJECT"], [[evil, "/dev/shm/\x07bell"]], [False, False])
    assert all("\x1b" not in line and "\x07" not in line and "\x9b" not in line for line in lines)
    assert lines[1].startswith("\\x1b[2J\\x1b[41mEVIL\\x9b")
