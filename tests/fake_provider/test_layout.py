"""The fake provider is a dev/test tool: it lives in devtools/, and the product never imports it
(nor psutil and uvloop, which only the fake provider and bench/ use)."""

from __future__ import annotations

import ast
import importlib.util
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PRODUCT_PACKAGES = ("accounts", "api", "campaigns", "providers", "recipients", "relay", "smsportal")


def _product_files() -> list[Path]:
    files = [path for package in PRODUCT_PACKAGES for path in sorted((ROOT / package).rglob("*.py"))]
    assert len(files) > 50, "the product packages were not found"
    return files


def _references(path: Path) -> set[str]:
    """Modules ``path`` imports, plus dotted paths in its strings (``import_module``, settings, Celery)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            head = node.value.split(":")[0]
            if "." in head and all(part.isidentifier() for part in head.split(".")):
                found.add(head)
    return found


# devtools: the fake provider. psutil, uvloop: dev dependencies (bench/, the fake provider).
@pytest.mark.parametrize("forbidden", ["devtools", "psutil", "uvloop"])
def test_the_product_never_imports(forbidden):
    offenders = [
        f"{path.relative_to(ROOT)}: {module}"
        for path in _product_files()
        for module in sorted(_references(path))
        if module.split(".")[0] == forbidden
    ]
    assert offenders == []


def test_the_reference_walker_sees_imports_and_dotted_strings(tmp_path):
    sample = tmp_path / "sample.py"
    sample.write_text('import devtools\nfrom devtools.fake_provider import x\nM = "devtools.fake_provider.server"\n')
    assert _references(sample) == {"devtools", "devtools.fake_provider", "devtools.fake_provider.server"}


def test_the_old_runtime_package_is_gone():
    assert not (ROOT / "providers" / "fake").exists()
    assert importlib.util.find_spec("providers.fake") is None
    assert importlib.util.find_spec("devtools.fake_provider") is not None


def test_devtools_is_not_a_django_app(settings):
    assert not [app for app in settings.INSTALLED_APPS if app.split(".")[0] == "devtools"]
