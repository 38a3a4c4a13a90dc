"""The registry imports an action's module when the action is asked for, and all of them when
looped over; every surface still sees every action, in declaration order.

Each check runs in a fresh interpreter: this test process has long imported every action.
"""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

import pytest

from openbotkit.actions import REGISTRY, Registry
from openbotkit.actions.index import MODULES
from openbotkit.errors import UnknownAction


def fresh(code: str) -> Any:
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True
    )
    return json.loads(proc.stdout)


ACTION_MODULES = """
import json, sys
from openbotkit.actions import REGISTRY
{body}
print(json.dumps(sorted(m for m in sys.modules if m.startswith("openbotkit.actions."))))
"""


def test_getting_an_action_imports_only_its_module() -> None:
    loaded = fresh(ACTION_MODULES.format(body='REGISTRY.get("list_bots")'))
    assert loaded == [
        "openbotkit.actions.base",
        "openbotkit.actions.bots",
        "openbotkit.actions.index",
        "openbotkit.actions.registry",
    ]


def test_names_and_membership_import_no_action_module() -> None:
    body = 'assert "create_bot" in REGISTRY and "nope" not in REGISTRY and REGISTRY.names()'
    assert "openbotkit.actions.bots" not in fresh(ACTION_MODULES.format(body=body))


def test_looping_imports_every_module_of_the_index() -> None:
    loaded = fresh(ACTION_MODULES.format(body="list(REGISTRY)"))
    assert set(MODULES.values()) <= set(loaded)


def test_order_is_the_declaration_order_whatever_was_asked_first() -> None:
    code = """
import json
from openbotkit.actions import REGISTRY
REGISTRY.get("search_dataset"); REGISTRY.get("fetch_usage")
print(json.dumps([a.name for a in REGISTRY]))
"""
    assert fresh(code) == list(MODULES)
    assert [a.name for a in REGISTRY] == list(MODULES)


def test_every_indexed_action_is_declared_where_the_index_says() -> None:
    assert len(REGISTRY) == len(MODULES)
    for act in REGISTRY:
        assert MODULES[act.name] == act.handler.__module__


def test_an_unknown_action_names_the_known_ones_without_importing_them() -> None:
    code = """
import json, sys
from openbotkit.actions import REGISTRY
try:
    REGISTRY.get("list_bot")
except Exception as exc:
    print(json.dumps([type(exc).__name__, "list_bots" in str(exc),
                      "openbotkit.actions.bots" in sys.modules]))
"""
    assert fresh(code) == ["UnknownAction", True, False]


def test_a_registry_without_an_index_holds_what_was_added() -> None:
    registry = Registry()
    assert list(registry) == [] and len(registry) == 0
    with pytest.raises(UnknownAction):
        registry.get("list_bots")
