"""Every settings example in the README, the docs and the plugin READMEs works when pasted.

Each ```python block that mentions ``PERSONALIZE`` is parsed. A block whose code
uses the ``PERSONALIZE`` name (it defines or reads the setting) is run as a
fragment of a settings module, and the system checks run with the
``PERSONALIZE`` it leaves: none may report an error, and none may warn beyond
what the test project's own settings warn. A block that names a plugin runs
only where that plugin is installed.
"""

from __future__ import annotations

import ast
import copy
import re
from importlib.util import find_spec
from pathlib import Path

import pytest
from django.conf import settings
from django.core.checks import ERROR, run_checks
from django.test import override_settings

REPO = Path(__file__).resolve().parent.parent
SOURCES = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md")),
           *sorted((REPO / "plugins").glob("*/README.md"))]
BLOCK = re.compile(r"^```python\n(.*?)^```", re.DOTALL | re.MULTILINE)
PLUGINS = ("personalize_surprise", "personalize_embeddings")


def _blocks() -> list[pytest.param]:
    found = []
    for path in SOURCES:
        text = path.read_text()
        for match in BLOCK.finditer(text):
            code = match.group(1)
            if "PERSONALIZE" not in code:
                continue
            line = text.count("\n", 0, match.start()) + 2
            where = f"{path.relative_to(REPO)}:{line}"
            found.append(pytest.param(code, where, id=where))
    return found


EXAMPLES = _blocks()


def _uses_setting(tree: ast.AST) -> bool:
    """Whether the code itself (not a comment or a string) names ``PERSONALIZE``."""
    return any(isinstance(node, ast.Name) and node.id == "PERSONALIZE" for node in ast.walk(tree))


def _settings_namespace() -> dict:
    """What a settings module holds where a fragment is pasted: Django's startproject names."""
    return {
        "__name__": "settings",
        "Path": Path,
        "BASE_DIR": REPO / "example_shop",
        "INSTALLED_APPS": list(settings.INSTALLED_APPS),
        "MIDDLEWARE": list(settings.MIDDLEWARE),
        "DATABASES": copy.deepcopy(settings.DATABASES),
        # a fragment that only reads the setting comes after the site's own dict
        "PERSONALIZE": {},
    }


def _problems(personalize: dict) -> tuple[list, list]:
    with override_settings(PERSONALIZE=personalize):
        messages = run_checks(include_deployment_checks=False)
    errors = [m for m in messages if m.level >= ERROR]
    warnings = [m for m in messages if m.level < ERROR and str(m.id).startswith("personalize.")]
    return errors, warnings


def test_examples_are_found():
    where = {w for _, w, in (p.values for p in EXAMPLES)}
    assert any(w.startswith("README.md:") for w in where)
    assert any(w.startswith("plugins/personalize-surprise/README.md:") for w in where)
    assert any(w.startswith("plugins/personalize-embeddings/README.md:") for w in where)


@pytest.mark.django_db
@pytest.mark.parametrize(("code", "where"), EXAMPLES)
def test_a_pasted_example_passes_the_system_checks(code, where):
    tree = ast.parse(code, where)  # every block is valid Python
    if not _uses_setting(tree):
        return  # names PERSONALIZE only in a comment or a string: parsing is the check
    for plugin in PLUGINS:
        if plugin in code and find_spec(plugin) is None:
            pytest.skip(f"{where} needs the {plugin} plugin")
    namespace = _settings_namespace()
    exec(compile(tree, where, "exec"), namespace)  # our own documentation
    personalize = copy.deepcopy(namespace["PERSONALIZE"])
    assert isinstance(personalize, dict), f"{where}: PERSONALIZE is not a dict"

    _, expected_warnings = _problems(dict(settings.PERSONALIZE))
    errors, warnings = _problems(personalize)
    assert errors == [], f"{where} fails the system checks"
    assert [w for w in warnings if w not in expected_warnings] == [], f"{where} adds warnings"
