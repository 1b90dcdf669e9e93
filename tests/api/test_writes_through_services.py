"""The API writes through the apps' services: no view saves, deletes or creates model rows itself."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from api.views import base

VIEWS = Path(__file__).resolve().parents[2] / "api" / "views"
WRITES = {
    "save",
    "delete",
    "create",
    "update",
    "bulk_create",
    "bulk_update",
    "get_or_create",
    "update_or_create",
    "set",
    "add",
    "remove",
    "clear",
}


def _is_super(node: ast.AST) -> bool:
    return isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "super"


def test_no_view_writes_a_model_itself():
    found = []
    for path in sorted(VIEWS.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr in WRITES
                and not _is_super(node.func.value)  # DRF's own create(), which calls perform_create
            ):
                found.append(f"{path.name}:{node.lineno} .{node.func.attr}(...)")
    assert found == []


@pytest.mark.parametrize("method", ["perform_create", "perform_update", "perform_destroy"])
def test_the_serializer_save_defaults_are_refused(method):
    with pytest.raises(NotImplementedError, match="service"):
        getattr(base.ModelViewSet(), method)(None)
