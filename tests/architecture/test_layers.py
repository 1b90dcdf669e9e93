"""The apps depend on each other one way only, and no import is hidden inside a function to dodge a cycle.

The layers, lowest first. An app may import the apps below it, never one above:

- ``providers``: backends and webhooks; knows nothing of the other apps.
- the ``smsportal`` library modules (phone numbers, settings helpers, logging, the
  embedded servers); the project's wiring (settings, urls, wsgi, celery, management
  commands) sits on top of everything instead.
- ``accounts``: people, roles, sender grants, tokens, the audit log.
- ``messaging``: every outbound message, the send engine, keywords, encoding.
- ``recipients``: lists, consent, imports, inbound keyword handling.
- ``campaigns``: compose, audience, launch, pause; the UI of sending.
- ``relay``: masked conversations.
- ``events``: outbound event webhooks, fed by the signals of the apps below.
- ``api``: the REST API over all of them.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
LAYERS = [
    "providers",
    "smsportal",
    "accounts",
    "messaging",
    "recipients",
    "campaigns",
    "relay",
    "events",
    "privacy",
    "api",
]
WIRING = {"settings.py", "test_settings.py", "urls.py", "wsgi.py", "asgi.py", "celery.py", "__init__.py"}


def _modules():
    for app in LAYERS:
        for path in sorted((ROOT / app).rglob("*.py")):
            if "migrations" in path.parts:
                continue
            if app == "smsportal" and (path.name in WIRING or "management" in path.parts):
                continue
            yield app, path


def _imports(path: Path):
    """(imported top-level package, line, inside a function?) for each import in the file."""
    tree = ast.parse(path.read_text())
    found = []

    def visit(node, in_function: bool) -> None:
        for child in ast.iter_child_nodes(node):
            nested = in_function or isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef)
            if isinstance(child, ast.Import):
                found.extend((alias.name.split(".")[0], child.lineno, in_function) for alias in child.names)
            elif isinstance(child, ast.ImportFrom) and child.module and child.level == 0:
                found.append((child.module.split(".")[0], child.lineno, in_function))
            visit(child, nested)

    visit(tree, False)
    return found


def test_every_app_imports_only_the_apps_below_it():
    wrong = []
    for app, path in _modules():
        for package, line, _ in _imports(path):
            if package in LAYERS and LAYERS.index(package) > LAYERS.index(app):
                wrong.append(f"{path.relative_to(ROOT)}:{line} ({app}) imports {package}, which is above it")
    assert wrong == []


def test_no_import_of_another_app_hides_inside_a_function():
    """AppConfig.ready() is where Django wants registrations to import; everywhere else imports at the top."""
    hidden = []
    for app, path in _modules():
        if path.name == "apps.py":
            continue
        for package, line, in_function in _imports(path):
            if in_function and package in LAYERS and package != app:
                hidden.append(f"{path.relative_to(ROOT)}:{line} imports {package} inside a function")
    assert hidden == []
