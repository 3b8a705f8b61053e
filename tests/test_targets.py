"""Targets config (exporter.targets): loading, validation, process-exporter's configs, matching.

process-exporter's semantics, as its README documents them: ``comm`` is the
second field of /proc/PID/stat (truncated at 15 chars), ``exe`` is argv[0] (its
basename when the selector has no '/', else argv[0] exactly), ``cmdline`` is a
list of regexes over argv joined by spaces that must all match; lists of comm
and exe are OR; several selectors in one entry must all match; the first entry
that matches names the group; ``name`` defaults to ``{{.ExeBase}}``.
"""

import os
import pwd
import subprocess
import sys

import pytest

from exporter.targets import ConfigError, Matcher, ProcessFacts, default_config, load_config
from exporter.targets.config import parse_config

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
FIXTURES = os.path.join(HERE, "fixtures")


class Argv:
    """A lazy argv that counts how often the matcher read /proc/PID/cmdline."""

    def __init__(self, argv):
        self.argv = list(argv)
        self.reads = 0

    def __call__(self):
        self.reads += 1
        return self.argv


def facts(comm, argv=(), uid=0, pid=4242, start=1000):
    return ProcessFacts(pid, start, comm, lambda: uid, Argv(argv))


def group_of(text, comm, argv=(), uid=0):
    return Matcher(parse_config(text, "test.yml")).group_of(facts(comm, argv, uid))


def write(tmp_path, text, name="targets.yml"):
    path = tmp_path / name
    path.write_text(text)
    return str(path)


# --- the embedded default ---------------------------------------------------------------------

def test_embedded_default_watches_every_process_by_comm():
    cfg = load_config(None)
    assert cfg == default_config()
    assert cfg.source == "<embedded default>"
    assert (cfg.top_n, cfg.min_limit_ratio) == (20, 0.5)
    m = Matcher(cfg)
    assert m.group_of(facts("nginx", ["/usr/sbin/nginx", "-g", "daemon off;"])) == "nginx"
    assert m.group_of(facts("(sd-pam) x)", pid=1)) == "(sd-pam) x)"
    f = facts("kworker/0:1", [], pid=7)
    assert m.group_of(f) == "kworker/0:1"
    assert f.argv.reads == 0  # grouping by comm never reads cmdline


# --- validation: every error names the file and the key path -----------------------------------

ERRORS = [
    # (id, YAML, words the message must hold after "<path>: ")
    ("unknown top-level key", "process_name:\n  - comm: [a]\n",
     ["process_name: unknown key", "allowed: per_process, process_names"]),
    ("unknown key in an entry", "process_names:\n  - name: x\n    comms: [a]\n",
     ["process_names[0].comms: unknown key", "allowed: cmdline, comm, exe, name"]),
    ("unknown key in the third entry", "process_names:\n  - comm: [a]\n  - comm: [b]\n  - nmae: c\n",
     ["process_names[2].nmae: unknown key"]),
    ("unknown key under per_process", "process_names:\n  - comm: [a]\nper_process:\n  topn: 3\n",
     ["per_process.topn: unknown key"]),
    ("bad regex", "process_names:\n  - comm: [a]\n  - cmdline: ['ok', '(unclosed']\n",
     ["process_names[1].cmdline[1]: bad regex '(unclosed'", "missing )"]),
    ("comm as a string, not a list", "process_names:\n  - comm: bash\n",
     ["process_names[0].comm: must be a non-empty list of strings"]),
    ("empty exe list", "process_names:\n  - exe: []\n", ["process_names[0].exe: must be a non-empty list"]),
    ("a number in exe", "process_names:\n  - exe: [postgres, 5]\n",
     ["process_names[0].exe[1]: must be a non-empty string, got 5"]),
    ("an empty regex", "process_names:\n  - cmdline: ['']\n",
     ["process_names[0].cmdline[0]: must be a non-empty string"]),
    ("name not a string", "process_names:\n  - name: [x]\n    comm: [a]\n",
     ["process_names[0].name: must be a non-empty string"]),
    ("an entry that is a string", "process_names:\n  - bash\n", ["process_names[0]: must be a mapping"]),
    ("no process_names", "per_process:\n  top_n: 3\n", ["process_names: required"]),
    ("empty process_names", "process_names: []\n", ["process_names: must be a non-empty list"]),
    ("process_names as a mapping", "process_names:\n  comm: [a]\n", ["process_names: must be a non-empty list"]),
    ("top level a list", "- comm: [a]\n", ["top level must be a mapping"]),
    ("empty file", "", ["top level must be a mapping"]),
    ("per_process as a list", "process_names:\n  - comm: [a]\nper_process: [1]\n", ["per_process: must be a mapping"]),
    ("top_n as a string", "process_names:\n  - comm: [a]\nper_process:\n  top_n: '5'\n",
     ["per_process.top_n: must be an integer from 0 to 10000, got '5'"]),
    ("top_n a boolean", "process_names:\n  - comm: [a]\nper_process:\n  top_n: true\n", ["per_process.top_n"]),
    ("top_n negative", "process_names:\n  - comm: [a]\nper_process:\n  top_n: -1\n", ["per_process.top_n"]),
    ("top_n too large", "process_names:\n  - comm: [a]\nper_process:\n  top_n: 10001\n", ["per_process.top_n"]),
    ("min_limit_ratio zero", "process_names:\n  - comm: [a]\nper_process:\n  min_limit_ratio: 0\n",
     ["per_process.min_limit_ratio: must be a number in (0, 1.5], got 0"]),
    ("min_limit_ratio above 1.5", "process_names:\n  - comm: [a]\nper_process:\n  min_limit_ratio: 1.6\n",
     ["per_process.min_limit_ratio"]),
    ("min_limit_ratio a string", "process_names:\n  - comm: [a]\nper_process:\n  min_limit_ratio: '0.5'\n",
     ["per_process.min_limit_ratio"]),
    ("unknown template field", "process_names:\n  - name: '{{.Pid}}'\n    comm: [a]\n",
     ["process_names[0].name: {{.Pid}}: unknown field"]),
    ("template capture that no regex defines",
     "process_names:\n  - name: '{{.Matches.App}}'\n    cmdline: ['(?P<Ap>x)']\n",
     ["process_names[0].name: {{.Matches.App}}: no such named capture", "have: Ap"]),
    ("unbalanced template", "process_names:\n  - name: '{{.Comm'\n", ["process_names[0].name", "unbalanced"]),
]


@pytest.mark.parametrize("text, words", [e[1:] for e in ERRORS], ids=[e[0] for e in ERRORS])
def test_invalid_config_names_file_and_key_path(tmp_path, text, words):
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as err:
        load_config(path)
    message = str(err.value)
    assert message.startswith(path + ": "), message
    for w in words:
        assert w in message, message


YAML_ERRORS = [
    # (id, YAML, "line L, column C" where PyYAML detects it)
    ("unclosed flow list", "process_names:\n  - name: x\n    comm: [a, b\n  - name: y\n", "line 4, column 9"),
    ("tab indentation", "process_names:\n\t- name: x\n", "line 2, column 1"),
    ("key indented under a list item", "process_names:\n  - name: a\n   comm: [x]\n", "line 3, column 4"),
    ("colon inside a plain scalar", "process_names:\n  - name: a: b\n", "line 2, column 12"),
    ("list item at the wrong level", "process_names:\n- comm: [a]\n  - exe: [b]\n", "line 3, column 3"),
]


@pytest.mark.parametrize("text, where", [e[1:] for e in YAML_ERRORS], ids=[e[0] for e in YAML_ERRORS])
def test_yaml_syntax_error_gives_line_and_column(tmp_path, text, where):
    path = write(tmp_path, text)
    with pytest.raises(ConfigError, match="invalid YAML") as err:
        load_config(path)
    assert str(err.value).startswith(f"{path}: {where}: invalid YAML: "), str(err.value)


def test_yaml_error_points_at_the_unclosed_quote(tmp_path):
    path = write(tmp_path, 'process_names:\n  - name: "abc\n    comm: [x]\n')
    with pytest.raises(ConfigError) as err:
        load_config(path)
    assert "line 2" in str(err.value)


@pytest.mark.parametrize("text, line", [
    ("process_names:\n  - comm: [a]\n    comm: [b]\n", 3),
    ("per_process: {top_n: 1}\nprocess_names: [{}]\nper_process: {top_n: 2}\n", 3),
])
def test_a_key_given_twice_is_refused_not_silently_overwritten(tmp_path, text, line):
    path = write(tmp_path, text)
    with pytest.raises(ConfigError, match="duplicate key") as err:
        load_config(path)
    assert f"line {line}" in str(err.value) and "first at line" in str(err.value)


def test_missing_file(tmp_path):
    path = str(tmp_path / "nope.yml")
    with pytest.raises(ConfigError, match="nope.yml: cannot read config"):
        load_config(path)


def test_directory_instead_of_file(tmp_path):
    with pytest.raises(ConfigError, match="cannot read config"):
        load_config(str(tmp_path))


def test_not_utf8(tmp_path):
    path = tmp_path / "latin1.yml"
    path.write_bytes(b"process_names:\n  - comm: [caf\xe9]\n")
    with pytest.raises(ConfigError, match="latin1.yml: cannot read config"):
        load_config(str(path))


def test_valid_per_process_settings(tmp_path):
    text = "process_names:\n  - comm: [a]\nper_process:\n  top_n: 0\n  min_limit_ratio: 1\n"
    cfg = load_config(write(tmp_path, text))
    assert (cfg.top_n, cfg.min_limit_ratio) == (0, 1.0)
    assert isinstance(cfg.min_limit_ratio, float)
    cfg = load_config(write(tmp_path, "process_names:\n  - comm: [a]\nper_process:\n"))
    assert (cfg.top_n, cfg.min_limit_ratio) == (20, 0.5)  # an empty per_process keeps the defaults


# --- the command line: a bad --config.file exits 2 before anything starts ------------------------

def run_cli(*args, timeout=60):
    env = dict(os.environ, PYTHONPATH=REPO + os.pathsep + os.environ.get("PYTHONPATH", ""))
    return subprocess.run([sys.executable, "-m", "exporter", *args], cwd=REPO, env=env, capture_output=True,
                          text=True, timeout=timeout, check=False)


CLI_ERRORS = [
    ("unknown key", "process_names:\n  - comm: [a]\n    exee: [b]\n", "process_names[0].exee: unknown key"),
    ("bad regex", "process_names:\n  - cmdline: ['[a-']\n", "process_names[0].cmdline[0]: bad regex"),
    ("wrong type", "process_names:\n  - comm: [a]\nper_process:\n  top_n: many\n", "per_process.top_n"),
    ("YAML syntax", "process_names:\n  - comm: [a\n", "line 3, column 1: invalid YAML"),
]


@pytest.mark.parametrize("text, words", [c[1:] for c in CLI_ERRORS], ids=[c[0] for c in CLI_ERRORS])
def test_cli_exits_2_naming_the_key_path(tmp_path, text, words):
    path = write(tmp_path, text)
    out = tmp_path / "out.prom"
    proc = run_cli("--config.file", path, "--path.procfs", os.path.join(FIXTURES, "proc"),
                   "--path.sysfs", os.path.join(FIXTURES, "sys"), "--textfile.output", str(out))
    assert proc.returncode == 2, proc.stderr
    assert f"config error: {path}: " in proc.stderr
    assert words in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not out.exists()  # nothing was collected or written


def test_cli_missing_config_file_exits_2(tmp_path):
    path = str(tmp_path / "missing.yml")
    proc = run_cli("--config.file", path, "--textfile.output", str(tmp_path / "out.prom"))
    assert proc.returncode == 2
    assert f"config error: {path}: cannot read config" in proc.stderr


def test_cli_valid_config_exits_0(tmp_path):
    """The counterpart: the same command with a valid file runs and writes the exposition."""
    path = write(tmp_path, "process_names:\n  - name: 'leaker'\n    comm: [shm-leaker]\n")
    out = tmp_path / "out.prom"
    proc = run_cli("--config.file", path, "--path.procfs", os.path.join(FIXTURES, "proc"),
                   "--path.sysfs", os.path.join(FIXTURES, "sys"), "--textfile.output", str(out))
    assert proc.returncode == 0, proc.stderr
    assert 'vma_group_processes{group="leaker"} 1.0' in out.read_text()


# --- process-exporter's own configs, verbatim ----------------------------------------------------
# From github.com/ncabatoff/process-exporter: README.md ("The default config shipped with the
# deb/rpm packages", the selectors example, "the config I use on my home machine"), the Helm
# chart's values.yaml (configmap.configFile) and config/config_test.go (TestConfigBasic).

PE_DEFAULT = """\
process_names:
  - name: "{{.Comm}}"
    cmdline:
    - '.+'
"""

PE_SELECTORS = """\

process_names:
  # comm is the second field of /proc/<pid>/stat minus parens.
  # It is the base executable name, truncated at 15 chars.
  # It cannot be modified by the program, unlike exe.
  - comm:
    - bash

  # exe is argv[0]. If no slashes, only basename of argv[0] need match.
  # If exe contains slashes, argv[0] must match exactly.
  - exe:
    - postgres
    - /usr/local/bin/prometheus

  # cmdline is a list of regexps applied to argv.
  # Each must match, and any captures are added to the .Matches map.
  - name: "{{.ExeFull}}:{{.Matches.Cfgfile}}"
    exe:
    - /usr/local/bin/process-exporter
    cmdline:
    - -config.path\\s+(?P<Cfgfile>\\S+)

"""

PE_HOME = """\

process_names:
  - comm:
    - chromium-browse
    - bash
    - prometheus
    - gvim
  - exe:
    - /sbin/upstart
    cmdline:
    - --user
    name: upstart:-user

"""

PE_HELM = """\
process_names:
- name: "{{.Comm}}"
  cmdline:
  - '.+'
"""

PE_TEST_BASIC = """
process_names:
  - exe: 
    - bash
  - exe: 
    - sh
  - exe: 
    - /bin/ksh
"""  # the trailing spaces after "exe:" are in the original

PE_TEST_POSTMASTER = """
process_names:
  - exe: 
    - postmaster
    cmdline: 
    - "-D\\\\s+.+?(?P<Path>[^/]+)(?:$|\\\\s)"
    name: "{{.ExeBase}}:{{.Matches.Path}}"
"""  # the first entry of TestConfigTemplates, trailing spaces and all

PE_CONFIGS = {"deb default": PE_DEFAULT, "README selectors": PE_SELECTORS, "README home machine": PE_HOME,
              "Helm chart": PE_HELM, "TestConfigBasic": PE_TEST_BASIC, "TestConfigTemplates[0]": PE_TEST_POSTMASTER}


@pytest.mark.parametrize("name", list(PE_CONFIGS))
def test_process_exporter_configs_load_unchanged(tmp_path, name):
    cfg = load_config(write(tmp_path, PE_CONFIGS[name]))
    assert cfg.rules
    assert (cfg.top_n, cfg.min_limit_ratio) == (20, 0.5)


PE_CASES = [
    # (config, comm, argv, group): the groups process-exporter gives these processes
    ("deb default", "sshd", ["sshd: root@pts/0"], "sshd"),
    ("deb default", "kthreadd", [], None),  # '.+' needs a command line: kernel threads are left out
    ("Helm chart", "nginx", ["nginx: master process /usr/sbin/nginx"], "nginx"),
    ("README selectors", "bash", ["/bin/bash", "-l"], "bash"),  # name defaults to {{.ExeBase}}
    ("README selectors", "postgres", ["/usr/lib/postgresql/15/bin/postgres", "-D", "/var/lib/pg"], "postgres"),
    ("README selectors", "prometheus", ["/usr/local/bin/prometheus", "--config.file=p.yml"], "prometheus"),
    ("README selectors", "prometheus", ["/opt/prometheus/prometheus"], None),  # a '/' in exe: argv[0] exactly
    ("README selectors", "process-exporte", ["/usr/local/bin/process-exporter", "-config.path", "/etc/pe.yml"],
     "/usr/local/bin/process-exporter:/etc/pe.yml"),
    ("README selectors", "process-exporte", ["/usr/local/bin/process-exporter"], None),  # cmdline must match
    ("README home machine", "chromium-browse", ["/usr/lib/chromium-browser/chromium-browser", "--type=renderer"],
     "chromium-browser"),  # comm selects, the default name is argv[0]'s basename
    ("README home machine", "upstart", ["/sbin/upstart", "--user"], "upstart:-user"),
    ("README home machine", "upstart", ["/sbin/upstart"], None),
    ("TestConfigBasic", "bash", ["/bin/bash"], "bash"),
    ("TestConfigBasic", "sh", ["sh"], "sh"),
    ("TestConfigBasic", "ksh", ["/bin/ksh"], "ksh"),
    ("TestConfigBasic", "ksh", ["/usr/bin/ksh"], None),
    ("TestConfigTemplates[0]", "postmaster", ["/usr/bin/postmaster", "-D", "/data/pg"], "postmaster:pg"),
]


@pytest.mark.parametrize("config, comm, argv, group", PE_CASES)
def test_process_exporter_semantics(config, comm, argv, group):
    assert group_of(PE_CONFIGS[config], comm, argv) == group


@pytest.mark.parametrize("field", ["PID", "StartTime"])
def test_process_exporter_per_process_templates_are_refused_clearly(field):
    """process-exporter's README also lists {{.PID}} and {{.StartTime}} ("almost never what you
    want"); here one group per process would defeat the bounded group series, so they are refused
    at load time with the key path rather than accepted."""
    with pytest.raises(ConfigError, match=rf"t.yml: process_names\[0\].name: {{{{.{field}}}}}: unknown field"):
        parse_config(f"process_names:\n  - name: '{{{{.{field}}}}}'\n    comm: [a]\n", "t.yml")


# --- templates -------------------------------------------------------------------------------------

JAVA = ["/usr/lib/jvm/bin/java", "-Xmx4g", "-jar", "/srv/apps/billing.jar", "--port", "8080"]
TEMPLATES = [
    # (name template, cmdline regexes, group for comm "java" with argv JAVA, uid 0)
    ("{{.Comm}}", [], "java"),
    ("{{ .Comm }}", [], "java"),
    ("{{.ExeBase}}", [], "java"),
    ("{{.ExeFull}}", [], "/usr/lib/jvm/bin/java"),
    ("{{.Username}}", [], pwd.getpwuid(0).pw_name),
    ("static-name", [], "static-name"),
    ("app:{{.Comm}}/{{.ExeBase}}!", [], "app:java/java!"),
    ("{{.Matches.App}}", [r"-jar\s+\S*/(?P<App>[^/]+)\.jar"], "billing"),
    ("{{.Comm}}-{{.Matches.App}}-{{.Matches.Port}}", [r"(?P<App>\w+)\.jar", r"--port (?P<Port>\d+)"],
     "java-billing-8080"),
    ("x{{.Matches.Debug}}y", [r"(?P<Debug>--debug)?.*-jar"], "xy"),  # a capture that did not take part
    ("{{.Matches.V}}", [r"(?P<V>-X\w+)", r"(?P<V>--\w+)"], "--port"),  # the later regex's capture wins
]


@pytest.mark.parametrize("template, regexes, group", TEMPLATES, ids=[t[0] for t in TEMPLATES])
def test_templates(template, regexes, group):
    text = f"process_names:\n  - name: '{template}'\n"
    if regexes:
        text += "    cmdline:\n" + "".join(f"    - '{r}'\n" for r in regexes)
    assert group_of(text, "java", JAVA) == group


def test_username_of_an_unknown_uid_is_the_number():
    uid = 3999999
    with pytest.raises(KeyError):
        pwd.getpwuid(uid)
    assert group_of("process_names:\n  - name: '{{.Username}}'\n", "app", ["app"], uid=uid) == str(uid)


@pytest.mark.parametrize("template, group", [("{{.ExeBase}}", "kthreadd"), ("{{.ExeFull}}", "kthreadd")])
def test_exe_templates_without_a_command_line_fall_back_to_comm(template, group):
    """process-exporter: ExeBase and ExeFull are the comm when cmdline is empty."""
    assert group_of(f"process_names:\n  - name: '{template}'\n", "kthreadd", []) == group


def test_exe_base_of_argv0_without_a_slash():
    assert group_of("process_names:\n  - name: '{{.ExeBase}}|{{.ExeFull}}'\n", "java", ["java", "-jar"]) == "java|java"


# --- first match wins ------------------------------------------------------------------------------

FIRST_MATCH = """\
process_names:
  - name: first
    comm: [java]
  - name: second
    cmdline: ['billing']
  - name: "{{.Comm}}"
    comm: [bash, python3]
"""


@pytest.mark.parametrize("comm, argv, group", [
    ("java", JAVA, "first"),  # matches all three entries
    ("python3", ["python3", "billing.py"], "second"),  # matches the second and the third
    ("python3", ["python3", "web.py"], "python3"),
    ("bash", ["bash"], "bash"),
    ("perl", ["perl", "billing.pl"], "second"),
    ("perl", ["perl", "x.pl"], None),  # no entry matches: not watched
])
def test_first_match_wins(comm, argv, group):
    assert group_of(FIRST_MATCH, comm, argv) == group


# --- selectors ---------------------------------------------------------------------------------------

EXE = [
    # (exe selectors, argv, matches)
    (["postgres"], ["/usr/lib/postgresql/15/bin/postgres", "-D", "/pg"], True),  # no '/': basename
    (["postgres"], ["postgres"], True),
    (["postgres"], ["postgres: checkpointer"], False),  # argv[0] rewritten by the program
    (["postgres"], ["/usr/bin/postgres-wrapper"], False),
    (["/usr/local/bin/prometheus"], ["/usr/local/bin/prometheus", "--web"], True),  # a '/': exactly
    (["/usr/local/bin/prometheus"], ["prometheus"], False),
    (["/usr/local/bin/prometheus"], ["/opt/prometheus"], False),
    (["/usr/local/bin/prometheus"], ["./prometheus"], False),
    (["postgres", "/usr/local/bin/prometheus"], ["/usr/local/bin/prometheus"], True),  # a list is OR
    (["postgres"], [], False),  # kernel thread: no argv[0]
    (["bash"], ["/usr/bin/python3", "bash"], False),  # argv[0] only, not the comm, not later args
]


@pytest.mark.parametrize("exe, argv, matches", EXE)
def test_exe_selector(exe, argv, matches):
    text = "process_names:\n  - name: hit\n    exe: [" + ", ".join(f"'{e}'" for e in exe) + "]\n"
    assert group_of(text, "bash", argv) == ("hit" if matches else None)


COMM = [
    # (comm selectors, comm, matches)
    (["bash"], "bash", True),
    (["bash"], "Bash", False),  # exact, case-sensitive
    (["bash"], "bash2", False),
    (["(sd-pam) x)"], "(sd-pam) x)", True),
    (["chromium-browse"], "chromium-browse", True),  # the kernel truncates comm to 15 chars
    (["chromium-browser"], "chromium-browse", False),
    (["nginx", "bash"], "bash", True),  # a list is OR
]


@pytest.mark.parametrize("comm_list, comm, matches", COMM)
def test_comm_selector(comm_list, comm, matches):
    text = "process_names:\n  - name: hit\n    comm: [" + ", ".join(f"'{c}'" for c in comm_list) + "]\n"
    assert group_of(text, comm, ["/usr/bin/other"]) == ("hit" if matches else None)


CMDLINE = [
    # (regexes, argv, matches)
    (["-jar"], JAVA, True),  # a search, not a full match
    (["^/usr/lib/jvm/bin/java -Xmx4g -jar"], JAVA, True),  # argv joined by single spaces
    (["--port 8080$"], JAVA, True),
    (["-Xmx4g -jar /srv"], JAVA, True),  # a regex may span arguments
    (["-Xmx", "-jar"], JAVA, True),  # a list is AND
    (["-Xmx", "-debug"], JAVA, False),
    (["^java"], JAVA, False),
    ([".+"], [], False),  # kernel thread: the joined command line is empty
    (["^$"], [], True),
    (["echo a  b"], ["sh", "-c", "echo a  b"], True),  # spaces inside one argument are kept
]


@pytest.mark.parametrize("regexes, argv, matches", CMDLINE)
def test_cmdline_selector(regexes, argv, matches):
    text = "process_names:\n  - name: hit\n    cmdline:\n" + "".join(f"    - '{r}'\n" for r in regexes)
    assert group_of(text, "java", argv) == ("hit" if matches else None)


@pytest.mark.parametrize("comm, argv, matches", [
    ("java", JAVA, True),
    ("bash", JAVA, False),  # comm differs
    ("java", ["/usr/bin/java", "-version"], False),  # exe matches, cmdline does not
    ("java", ["/opt/jdk/bin/javaw", "-jar", "x.jar"], False),  # cmdline matches, exe does not
])
def test_selectors_in_one_entry_must_all_match(comm, argv, matches):
    text = "process_names:\n  - name: hit\n    comm: [java]\n    exe: [java]\n    cmdline: ['-jar']\n"
    assert group_of(text, comm, argv) == ("hit" if matches else None)


def test_an_entry_without_selectors_matches_everything():
    """An extension: process-exporter requires a selector; the embedded default relies on this."""
    assert group_of("process_names:\n  - name: all\n", "anything", []) == "all"


# --- matching cost: cmdline read lazily, once per process ---------------------------------------

def test_comm_mismatch_never_reads_cmdline():
    m = Matcher(parse_config("process_names:\n  - comm: [java]\n    cmdline: ['-jar']\n", "t.yml"))
    f = facts("bash", ["bash"])
    assert m.group_of(f) is None
    assert f.argv.reads == 0


def test_cmdline_read_once_per_process_and_decision_cached():
    m = Matcher(parse_config(FIRST_MATCH, "t.yml"))
    f = facts("perl", ["perl", "billing.pl"])
    assert m.group_of(f) == "second"
    assert m.group_of(f) == "second"
    assert f.argv.reads == 1
    # The same identity is answered from the cache even if argv would now say otherwise.
    g = ProcessFacts(f.pid, f.starttime_ticks, f.comm, lambda: 0, Argv(["perl", "x.pl"]))
    assert m.group_of(g) == "second"
    assert g.argv.reads == 0


def test_reused_pid_or_renamed_process_is_matched_again():
    m = Matcher(parse_config(FIRST_MATCH, "t.yml"))
    assert m.group_of(facts("perl", ["perl", "billing.pl"], pid=7, start=100)) == "second"
    assert m.group_of(facts("bash", ["bash"], pid=7, start=200)) == "bash"  # pid reused: new start time
    assert m.group_of(facts("java", ["bash"], pid=7, start=200)) == "first"  # prctl(PR_SET_NAME): new comm


def test_a_pass_forgets_processes_it_did_not_see_and_remembers_their_groups_once():
    m = Matcher(parse_config(FIRST_MATCH, "t.yml"))
    first = facts("perl", ["perl", "billing.pl"], pid=7)
    m.group_of(first)
    m.end_pass()
    again = facts("perl", ["perl", "billing.pl"], pid=7)
    m.group_of(again)
    assert again.argv.reads == 0  # seen in the last pass: still cached
    m.end_pass()
    assert m.gone == {}
    m.end_pass()  # a pass that did not see it
    assert m.gone == {(7, 1000): "second"}  # the group of what went, for one pass
    m.group_of(again)
    assert again.argv.reads == 1  # forgotten, so read again
    m.end_pass()
    m.end_pass()
    assert m.gone == {(7, 1000): "second"}
    m.end_pass()
    assert m.gone == {}
