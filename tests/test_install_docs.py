"""The install commands of the README and the docs work as written.

django-personalize and its plugins are not on PyPI: every ``pip install`` the
docs show installs them from a path of this repository or from the wheels
``make dist`` builds (``--find-links dist``), names extras that exist, and the
core carries what the documented Redis broker needs.
"""

from __future__ import annotations

import re
import shlex
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement

REPO = Path(__file__).resolve().parent.parent
DOCS = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md")),
        *sorted((REPO / "plugins").glob("*/README.md"))]
#: Our distributions, by name, and the folder of each.
PROJECTS = {
    "django-personalize": REPO,
    "personalize-surprise": REPO / "plugins" / "personalize-surprise",
    "personalize-embeddings": REPO / "plugins" / "personalize-embeddings",
}
#: Placeholder the docs use for a checkout of this repository.
CHECKOUT = "path/to/django-personalize"
#: Options of pip install that take a value.
VALUED_OPTIONS = {"--find-links", "-f", "--index-url", "-i", "--extra-index-url", "-r",
                  "--requirement", "-c", "--constraint", "--target", "-t"}


def _pyproject(folder: Path) -> dict:
    return tomllib.loads((folder / "pyproject.toml").read_text())


def _commands() -> list[pytest.param]:
    """Every ``pip install ...`` in the docs: code blocks, indented blocks and inline code."""
    found = []
    for path in DOCS:
        for number, line in enumerate(path.read_text().splitlines(), start=1):
            for match in re.finditer(r"pip install ([^`#\n]+)", line):
                command = match.group(1).split("&&")[0].strip()
                where = f"{path.relative_to(REPO)}:{number}"
                found.append(pytest.param(command, where, id=f"{where} {command}"))
    return found


COMMANDS = _commands()


def _project_folder(target: str) -> Path:
    """The folder a path argument names (the docs run in the checkout's root)."""
    if target.startswith(CHECKOUT):
        target = "." + target[len(CHECKOUT):]
    return (REPO / target).resolve()


def test_the_readme_and_the_plugin_readmes_say_how_to_install():
    where = {param.values[1].split(":")[0] for param in COMMANDS}
    assert {"README.md", "docs/quickstart.md", "plugins/personalize-surprise/README.md",
            "plugins/personalize-embeddings/README.md"} <= where


@pytest.mark.parametrize(("command", "where"), COMMANDS)
def test_an_install_command_names_what_exists(command, where):
    find_links = None
    targets = []
    tokens = iter(shlex.split(command))
    for token in tokens:
        if token in ("--find-links", "-f"):
            find_links = next(tokens)
        elif token in VALUED_OPTIONS:
            next(tokens, None)
        elif not token.startswith("-"):  # -e, -q, -U: flags; an editable path follows -e
            targets.append(token)
    assert targets, f"{where}: `pip install {command}` installs nothing"
    if find_links is not None:
        # the folder `make dist` fills (relative to the checkout, or the placeholder's)
        assert Path(find_links).name == "dist", f"{where}: --find-links {find_links}"
        assert re.search(r"^dist:", (REPO / "Makefile").read_text(), re.MULTILINE)
    for target in targets:
        if target.startswith(".") or "/" in target:  # a path: names have no slash
            path, _, extras = target.partition("[")
            folder = _project_folder(path)
            assert (folder / "pyproject.toml").is_file(), f"{where}: {path} is not a project here"
            project = _pyproject(folder)
            wanted = set(filter(None, extras.rstrip("]").split(",")))
        else:
            requirement = Requirement(target)
            if requirement.name not in PROJECTS:
                continue  # a package from PyPI (torch, hnswlib, ...)
            assert find_links is not None, (
                f"{where}: {requirement.name} is not on PyPI; install it from a path or with "
                "--find-links dist"
            )
            project = _pyproject(PROJECTS[requirement.name])
            wanted = set(requirement.extras)
        extras_defined = set(project["project"].get("optional-dependencies", {}))
        assert wanted <= extras_defined, f"{where}: no extra {wanted - extras_defined}"


def test_the_plugin_extras_name_the_plugin_projects():
    extras = _pyproject(REPO)["project"]["optional-dependencies"]
    for extra, name in (("surprise", "personalize-surprise"),
                        ("embeddings", "personalize-embeddings")):
        assert [Requirement(r).name for r in extras[extra]] == [name]
        assert _pyproject(PROJECTS[name])["project"]["name"] == name


def test_the_core_brings_celerys_redis_transport():
    # A worker on the documented Redis broker imports kombu.transport.redis, which needs
    # `packaging`: only the celery[redis] extra brings it.
    requirements = [Requirement(r) for r in _pyproject(REPO)["project"]["dependencies"]]
    celery = next(r for r in requirements if r.name == "celery")
    assert "redis" in celery.extras


@pytest.mark.parametrize("folder", PROJECTS.values(), ids=PROJECTS.keys())
def test_each_project_declares_an_spdx_license_with_its_file(folder):
    project = _pyproject(folder)
    assert project["project"]["license"] == "BSD-3-Clause"
    for name in project["project"]["license-files"]:
        assert (folder / name).is_file()
    requires = [Requirement(r) for r in project["build-system"]["requires"]]
    setuptools = next(r for r in requires if r.name == "setuptools")
    assert setuptools.specifier.contains("77") and not setuptools.specifier.contains("76.1")


def test_the_readme_names_the_chromium_of_the_browser_tests():
    source = (REPO / "tests" / "e2e" / "shop.py").read_text()  # the browser tests' helpers
    chromium = re.search(r'CHROMIUM = Path\("([^"]+)"\)', source).group(1)
    readme = (REPO / "README.md").read_text()
    assert f"`{chromium}`" in readme
    assert "apt-get install -y chromium" in readme
