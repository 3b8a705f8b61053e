"""The targets config: YAML in, a validated immutable Config out.

Format (process-exporter's ``process_names`` is a subset and works unchanged)::

    process_names:              # first match wins
      - name: "{{.Comm}}"       # template: Comm, ExeBase, ExeFull, Username, Matches.<group>
        comm: [nginx]           # any of these comms (OR)
        exe: [/usr/bin/java]    # argv[0]: full path if it has a '/', else its basename (OR)
        cmdline: ['-jar (?P<App>\\S+)']   # regexes over argv joined by spaces (AND)
    per_process:                # which processes get per-process series
      top_n: 20                 # the N processes with most map areas on the node
      min_limit_ratio: 0.5      # plus every process at or above this share of max_map_count

An entry without selectors matches every process (process-exporter requires
one; the embedded default uses this to watch everything, grouped by comm).
Every error names its key path, e.g. ``process_names[2].cmdline[0]``.
"""

import re
from dataclasses import dataclass, field

import yaml

from exporter.targets.template import Template, TemplateError

DEFAULT_YAML = """\
# Embedded default: watch every process, grouped by comm.
process_names:
  - name: "{{.Comm}}"
per_process:
  top_n: 20
  min_limit_ratio: 0.5
"""

_TOP_KEYS = {"process_names", "per_process"}
_RULE_KEYS = {"name", "comm", "exe", "cmdline"}
_PER_PROCESS_KEYS = {"top_n", "min_limit_ratio"}


class ConfigError(ValueError):
    """Invalid config; the message names the source and key path."""


@dataclass(frozen=True)
class GroupRule:
    name: Template
    comm: frozenset[str] | None = None
    exe: tuple[str, ...] | None = None
    cmdline: tuple[re.Pattern, ...] = ()

    @property
    def needs_argv(self) -> bool:
        return bool(self.cmdline) or self.exe is not None or self.name.needs_argv


@dataclass(frozen=True)
class Config:
    rules: tuple[GroupRule, ...]
    top_n: int = 20
    min_limit_ratio: float = 0.5
    source: str = "<embedded default>"
    text: str = field(default="", compare=False, repr=False)


def _strings(value, path: str) -> list[str]:
    if not isinstance(value, list) or not value:
        raise ConfigError(f"{path}: must be a non-empty list of strings")
    for i, item in enumerate(value):
        if not isinstance(item, str) or not item:
            raise ConfigError(f"{path}[{i}]: must be a non-empty string, got {item!r}")
    return value


def _unknown(mapping: dict, allowed: set[str], path: str) -> None:
    for key in mapping:
        if key not in allowed:
            where = f"{path}.{key}" if path else str(key)
            raise ConfigError(f"{where}: unknown key (allowed: {', '.join(sorted(allowed))})")


def _rule(raw, path: str) -> GroupRule:
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: must be a mapping with name/comm/exe/cmdline")
    _unknown(raw, _RULE_KEYS, path)
    patterns = []
    for i, text in enumerate(_strings(raw["cmdline"], f"{path}.cmdline") if "cmdline" in raw else []):
        try:
            patterns.append(re.compile(text))
        except re.error as exc:
            raise ConfigError(f"{path}.cmdline[{i}]: bad regex {text!r}: {exc}") from None
    captures = {name for p in patterns for name in p.groupindex}
    # process-exporter's default name is {{.ExeBase}}; keep it so its configs name groups alike.
    name = raw.get("name", "{{.ExeBase}}")
    if not isinstance(name, str) or not name:
        raise ConfigError(f"{path}.name: must be a non-empty string, got {name!r}")
    try:
        template = Template(name, captures)
    except TemplateError as exc:
        raise ConfigError(f"{path}.name: {exc}") from None
    return GroupRule(
        name=template,
        comm=frozenset(_strings(raw["comm"], f"{path}.comm")) if "comm" in raw else None,
        exe=tuple(_strings(raw["exe"], f"{path}.exe")) if "exe" in raw else None,
        cmdline=tuple(patterns),
    )


def _per_process(raw) -> dict:
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise ConfigError("per_process: must be a mapping with top_n and min_limit_ratio")
    _unknown(raw, _PER_PROCESS_KEYS, "per_process")
    out = {}
    if "top_n" in raw:
        top_n = raw["top_n"]
        if not isinstance(top_n, int) or isinstance(top_n, bool) or not 0 <= top_n <= 10_000:
            raise ConfigError(f"per_process.top_n: must be an integer from 0 to 10000, got {top_n!r}")
        out["top_n"] = top_n
    if "min_limit_ratio" in raw:
        ratio = raw["min_limit_ratio"]
        if not isinstance(ratio, (int, float)) or isinstance(ratio, bool) or not 0 < ratio <= 1.5:
            raise ConfigError(f"per_process.min_limit_ratio: must be a number in (0, 1.5], got {ratio!r}")
        out["min_limit_ratio"] = float(ratio)
    return out


class _UniqueKeyLoader(yaml.SafeLoader):
    """SafeLoader that refuses a key given twice in one mapping (PyYAML keeps the last)."""

    def construct_mapping(self, node, deep=False):
        seen = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    "while constructing a mapping", node.start_mark,
                    f"found duplicate key {key!r} (first at line {seen[key] + 1})", key_node.start_mark)
            seen[key] = key_node.start_mark.line
        return super().construct_mapping(node, deep)


def parse_config(text: str, source: str) -> Config:
    """Validate YAML text; raise ConfigError naming source, line or key path."""
    try:
        raw = yaml.load(text, Loader=_UniqueKeyLoader)  # noqa: S506 (a SafeLoader subclass)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or exc
        # For an unclosed quote the problem is found at the end of the file; the context
        # ("while scanning a quoted scalar", and its line) says where the mistake is.
        context, cmark = getattr(exc, "context", None), getattr(exc, "context_mark", None)
        if context and cmark is not None and mark is not None and cmark.line != mark.line:
            problem = f"{problem} ({context} at line {cmark.line + 1}, column {cmark.column + 1})"
        raise ConfigError(f"{source}:{where}: invalid YAML: {problem}") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{source}: top level must be a mapping with process_names")
    try:
        _unknown(raw, _TOP_KEYS, "")
        if "process_names" not in raw:
            raise ConfigError("process_names: required")
        entries = raw["process_names"]
        if not isinstance(entries, list) or not entries:
            raise ConfigError("process_names: must be a non-empty list")
        rules = tuple(_rule(entry, f"process_names[{i}]") for i, entry in enumerate(entries))
        return Config(rules=rules, source=source, text=text, **_per_process(raw.get("per_process")))
    except ConfigError as exc:
        raise ConfigError(f"{source}: {exc}") from None


def load_config(path: str | None) -> Config:
    """Load the file at *path*, or the embedded default when *path* is None."""
    if path is None:
        return default_config()
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read config: {exc}") from None
    return parse_config(text, path)


def default_config() -> Config:
    return parse_config(DEFAULT_YAML, "<embedded default>")
