"""Assign a process to its group: the first rule whose selectors all match.

Like process-exporter, the decision is cached per process identity, here
(pid, start time, comm): a reused pid is a new process, and a process that
renames itself (prctl PR_SET_NAME) is matched again. So argv is read once per
process lifetime, not once per scrape.
"""

import os
import pwd
from dataclasses import dataclass
from typing import Callable

from exporter.targets.config import Config, GroupRule

Key = tuple[int, int, str]
MISSING = object()


@dataclass
class ProcessFacts:
    """What a rule may look at. The costly facts are functions, called only when a
    rule needs them: argv (/proc/PID/cmdline) and the uid (for {{.Username}})."""

    pid: int
    starttime_ticks: int
    comm: str
    uid: Callable[[], int | None]
    argv: Callable[[], list[str]]

    @property
    def key(self) -> Key:
        return (self.pid, self.starttime_ticks, self.comm)


def _username(uid: int | None, cache: dict[int, str]) -> str:
    if uid is None:  # the source could not tell
        return ""
    if uid not in cache:
        try:
            cache[uid] = pwd.getpwuid(uid).pw_name
        except KeyError:
            cache[uid] = str(uid)
    return cache[uid]


class Matcher:
    """The cache has two generations: what this pass looked up, and what the last one did.
    A lookup moves an entry from the last to this; end_pass() drops what nobody looked up
    (the processes that are gone), keeping their groups one pass more in ``gone``. So the
    cache is bounded by the live processes with no sweep over it each pass."""

    def __init__(self, config: Config):
        self.config = config
        self._cache: dict[Key, str | None] = {}  # looked up this pass
        self._last: dict[Key, str | None] = {}  # looked up in the last pass, not yet in this one
        self._users: dict[int, str] = {}
        self.gone: dict[tuple[int, int], str] = {}  # (pid, start) -> group of the watched that went last pass

    def cached(self, key: Key) -> str | None | object:
        """The group decided before for this identity, or MISSING (the cheap path every scrape)."""
        # Each process is looked up once a pass, so the last pass's generation is where it
        # is found: asked first, it saves a missed lookup in this one per process.
        group = self._last.pop(key, MISSING)
        if group is MISSING:
            return self._cache.get(key, MISSING)
        self._cache[key] = group
        return group

    def group_of(self, facts: ProcessFacts) -> str | None:
        """The group name, or None when no rule matches (the process is not watched)."""
        key = facts.key
        group = self.cached(key)
        if group is not MISSING:
            return group
        group = self._evaluate(facts)
        self._cache[key] = group
        return group

    def end_pass(self) -> None:
        """Forget the processes no lookup asked for since the last end_pass (they are gone)."""
        self.gone = {(pid, start): group for (pid, start, _), group in self._last.items() if group is not None}
        self._last, self._cache = self._cache, {}

    def _evaluate(self, facts: ProcessFacts) -> str | None:
        argv: list[str] | None = None
        for rule in self.config.rules:
            if rule.comm is not None and facts.comm not in rule.comm:
                continue
            if rule.needs_argv and argv is None:
                argv = facts.argv()
            matches: dict[str, str] = {}
            if not _match_exe(rule, argv) or not _match_cmdline(rule, argv, matches):
                continue
            exe_full = argv[0] if argv else facts.comm
            values = {
                "Comm": facts.comm,
                "ExeFull": exe_full,
                "ExeBase": os.path.basename(exe_full) if argv else facts.comm,
            }
            if "Username" in rule.name.fields:
                values["Username"] = _username(facts.uid(), self._users)
            return rule.name.render(values, matches)
        return None


def _match_exe(rule: GroupRule, argv: list[str] | None) -> bool:
    if rule.exe is None:
        return True
    if not argv:
        return False
    # process-exporter: with a '/', argv[0] must match exactly; else its basename.
    base = os.path.basename(argv[0])
    return any(argv[0] == e if "/" in e else base == e for e in rule.exe)


def _match_cmdline(rule: GroupRule, argv: list[str] | None, matches: dict[str, str]) -> bool:
    if not rule.cmdline:
        return True
    line = " ".join(argv or ())
    for pattern in rule.cmdline:
        m = pattern.search(line)
        if m is None:
            return False
        matches.update({k: v for k, v in m.groupdict().items() if v is not None})
    return True
