"""The distribution carries what a site needs, and a brand-new project can migrate with it."""

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
         "-w", str(out), str(REPO)],
        check=True, capture_output=True,
    )
    return next(out.glob("django_personalize-*.whl"))


@pytest.mark.slow
def test_wheel_contains_package_data_and_no_heavy_ml(wheel):
    names = zipfile.ZipFile(wheel).namelist()
    assert "personalize/py.typed" in names
    assert "personalize/migrations/0001_initial.py" in names
    assert any(n.startswith("personalize/templates/personalize/") for n in names)
    assert not any(n.startswith(("tests/", "example_shop/", "plugins/")) for n in names)
    metadata = next(n for n in names if n.endswith("METADATA"))
    requires = [
        line for line in zipfile.ZipFile(wheel).read(metadata).decode().splitlines()
        if line.startswith("Requires-Dist:") and "extra ==" not in line
    ]
    assert not any("torch" in r or "sentence" in r for r in requires), requires


@pytest.mark.slow
def test_a_new_startproject_site_migrates_with_the_app(tmp_path):
    subprocess.run([sys.executable, "-m", "django", "startproject", "site0", str(tmp_path)],
                   check=True)
    settings = tmp_path / "site0" / "settings.py"
    settings.write_text(
        settings.read_text().replace(
            "INSTALLED_APPS = [", 'INSTALLED_APPS = [\n    "rest_framework",\n    "personalize",'
        )
    )
    env = {"PATH": "/usr/bin:/bin", "DJANGO_SETTINGS_MODULE": "site0.settings"}
    check = subprocess.run([sys.executable, "manage.py", "check"], cwd=tmp_path, env=env,
                           capture_output=True, text=True)
    assert check.returncode == 0, check.stderr
    migrate = subprocess.run([sys.executable, "manage.py", "migrate", "--noinput"], cwd=tmp_path,
                             env=env, capture_output=True, text=True)
    assert migrate.returncode == 0, migrate.stderr
    assert "Applying personalize.0001_initial... OK" in migrate.stdout
