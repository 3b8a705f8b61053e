"""The repository's monitoring sources and generator, imported from their files.

tools/generate.py puts deploy/prometheus (vma_mixin) and grafana (vma_dashboards)
on sys.path; loading it by path keeps the tests independent of whatever else
is installed under names like "tools" or "deploy".
"""

import functools
import importlib.util
import os

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
RULE_TESTS_DIR = os.path.join(ROOT, "deploy", "prometheus", "tests")
RUNBOOK = os.path.join(ROOT, "docs", "runbook.md")


@functools.lru_cache(maxsize=None)
def generator():
    """The module tools/generate.py (outputs(), stale(), RULES_FILE, ...)."""
    path = os.path.join(ROOT, "tools", "generate.py")
    spec = importlib.util.spec_from_file_location("vma_generate", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def path(rel: str) -> str:
    return os.path.join(ROOT, rel)
