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
    def __init__(self, config: Config):
        self.config = config
        self._cache: dict[Key, str | None] = {}
        self._users: dict[int, str] = {}

    def cached(self, key: Key) -> str | None | object:
        """The group decided before for this identity, or MISSING (the cheap path every scrape)."""
        return self._cache.get(key, MISSING)

    def group_of(self, facts: ProcessFacts) -> str | None:
        """The group name, or None when no rule matches (the process is not watched)."""
        key = facts.key
        try:
            return self._cache[key]
        except KeyError:
            pass
        group = self._evaluate(facts)
        self._cache[key] = group
        return group

    def retain(self, live: set[Key]) -> None:
        """Forget processes not seen in the last collection (bounds the cache)."""
        for key in [k for k in self._cache if k not in live]:
            del self._cache[key]

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
