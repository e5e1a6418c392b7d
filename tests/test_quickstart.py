"""docs/quickstart.md, followed to the letter in a fresh ``startproject`` site.

The project is built from the page's own code blocks: a block whose first line
is ``# <path>`` is that file, and ``# <path>: add at the end`` is appended to
it. The site must pass ``check`` with no warning, and serve the API schema and
its docs page with DRF's default settings.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
QUICKSTART = REPO / "docs" / "quickstart.md"
FILE_BLOCK = re.compile(
    r"```python\n# (?P<path>[\w/.]+)(?P<append>: add at the end)?\n(?P<body>.*?)```", re.S)
WARNING_ID = re.compile(r"\((personalize\.W\d{3})\)|^\S+: \((personalize\.W\d{3})\)", re.M)


def quickstart_files() -> list[tuple[str, bool, str]]:
    """``(path, append, text)`` of every file block of the quick start, in order."""
    return [(m["path"], bool(m["append"]), m["body"])
            for m in FILE_BLOCK.finditer(QUICKSTART.read_text())]


def site_env() -> dict[str, str]:
    # the new site's manage.py chooses its own settings
    return {k: v for k, v in os.environ.items()
            if k not in ("DJANGO_SETTINGS_MODULE", "DATABASE_URL", "REDIS_URL")}


def run(site: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, *args], cwd=site, env=site_env(), capture_output=True, text=True,
        timeout=300, check=False,
    )


def new_site(tmp_path: Path) -> Path:
    site = tmp_path / "mysite"
    site.mkdir()
    for args in (("-m", "django", "startproject", "mysite", str(site)),
                 ("manage.py", "startapp", "shop")):
        result = run(site, *args)
        assert result.returncode == 0, result.stderr
    return site


def warning_ids(output: str) -> set[str]:
    return {a or b for a, b in WARNING_ID.findall(output)}


def test_the_quickstart_lists_every_file_it_needs():
    paths = [path for path, _, _ in quickstart_files()]
    assert paths == ["shop/models.py", "mysite/settings.py", "mysite/celery.py",
                     "mysite/__init__.py", "mysite/urls.py"]


def test_a_site_built_from_the_quickstart_has_no_warning_and_serves_the_schema(tmp_path):
    site = new_site(tmp_path)
    for path, append, body in quickstart_files():
        target = site / path
        target.write_text((target.read_text() + "\n" if append else "") + body)

    check = run(site, "manage.py", "check", "--fail-level", "WARNING")
    assert check.returncode == 0, check.stderr + check.stdout
    assert "System check identified no issues" in check.stdout

    for args in (("makemigrations", "shop"), ("migrate", "-v", "0")):
        result = run(site, "manage.py", *args)
        assert result.returncode == 0, result.stderr
    fetch = run(site, "manage.py", "shell", "-c", """
import json
from django.contrib.staticfiles import finders
from django.test import Client
schema = Client().get("/api/personalize/schema/", HTTP_HOST="localhost",
                      HTTP_ACCEPT="application/vnd.oai.openapi+json")
docs = Client().get("/api/personalize/docs/", HTTP_HOST="localhost")
print(json.dumps({
    "schema": schema.status_code, "paths": sorted(schema.json()["paths"]),
    "docs": docs.status_code, "html": docs.content.decode(),
    "bundle": bool(finders.find("drf_spectacular_sidecar/swagger-ui-dist/swagger-ui-bundle.js")),
}))
""")
    assert fetch.returncode == 0, fetch.stderr
    answers = json.loads(fetch.stdout.strip().splitlines()[-1])
    assert answers["schema"] == 200 and "/api/personalize/recommendations/" in answers["paths"]
    assert answers["docs"] == 200 and answers["bundle"]
    assert "/static/drf_spectacular_sidecar/swagger-ui-dist/swagger-ui-bundle.js" in (
        answers["html"])
    assert "cdn." not in answers["html"]


def test_every_warning_of_a_bare_install_is_resolved_by_the_quickstart(tmp_path):
    site = new_site(tmp_path)
    settings = site / "mysite" / "settings.py"
    settings.write_text(settings.read_text()
                        + '\nINSTALLED_APPS += ["rest_framework", "personalize"]\n')
    urls = site / "mysite" / "urls.py"
    urls.write_text(urls.read_text().replace("from django.urls import path",
                                             "from django.urls import include, path")
                    .replace("urlpatterns = [", 'urlpatterns = [\n    path("api/personalize/", '
                             'include("personalize.api.urls")),'))
    check = run(site, "manage.py", "check")
    assert check.returncode == 0, check.stderr
    shown = warning_ids(check.stderr + check.stdout)
    assert shown, check.stderr  # the bare install does need the quick start's steps
    guide = QUICKSTART.read_text()
    assert {w for w in shown if w not in guide} == set()

