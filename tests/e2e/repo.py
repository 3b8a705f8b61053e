"""The repository's monitoring sources: the mixin in deploy/mixin and its renderer.

tools/render_mixin.py is loaded from its file, which keeps the tests independent of
whatever else is installed under a name like "tools". Its jsonnet runs are cached, so a
test session evaluates each variant of the mixin once.
"""

import functools
import importlib.util
import os
import shutil

import pytest
import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
MIXIN_DIR = os.path.join(ROOT, "deploy", "mixin")
RULE_TESTS_DIR = os.path.join(ROOT, "deploy", "prometheus", "tests")
RUNBOOK = os.path.join(ROOT, "docs", "runbook.md")


@functools.lru_cache(maxsize=None)
def renderer():
    """The module tools/render_mixin.py (rendered(), outputs(), stale(), jsonnet(), RULES_FILE, ...)."""
    path = os.path.join(ROOT, "tools", "render_mixin.py")
    spec = importlib.util.spec_from_file_location("vma_render_mixin", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def path(rel: str) -> str:
    return os.path.join(ROOT, rel)


def rule_groups() -> list[dict]:
    """The groups of the checked-in rules file (the stale check keeps it equal to a fresh rendering)."""
    with open(path(renderer().RULES_FILE), encoding="utf-8") as f:
        return yaml.safe_load(f)["groups"]


def config() -> dict:
    """The mixin's default _config."""
    return renderer().default_config()


def job() -> str:
    """The job name of the default vmaExporterSelector (job="vma-exporter")."""
    selector = config()["vmaExporterSelector"]
    name = selector.removeprefix('job="').removesuffix('"')
    assert selector == f'job="{name}"', f"the e2e test scrapes one job; the default selector is {selector}"
    return name


needs_jsonnet = pytest.mark.skipif(shutil.which("jsonnet") is None,
                                   reason="jsonnet not installed (apt-get install jsonnet; scripts/test.sh does)")
