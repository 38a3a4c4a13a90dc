"""Every registered action is reached by an official SDK or the connector, and answered 2xx.

Read from `obk serve`'s access log after the rest of the contract suite ran (conftest.py orders
this test last), so an action registered without contract coverage fails here by name.
"""

from __future__ import annotations

import re

import pytest

from openbotkit.actions import REGISTRY
from tests.contract.conftest import COVERAGE_TEST, LiveServer

pytestmark = pytest.mark.contract

ACCESS = re.compile(r'"(?P<method>[A-Z]+) (?P<path>[^ ?"]+)[^"]* HTTP/[0-9.]+" (?P<status>\d{3})')
SUITES = ("test_node_sdk.py", "test_python_sdk.py", "test_connector_http.py")


def route_pattern(path: str) -> re.Pattern[str]:
    body = re.sub(r"\\{\w+\\}", "[^/]+", re.escape(path))
    return re.compile(rf"(?:/api)?/v1{body}")


def test_every_action_is_answered_over_http(
    live_server: LiveServer, request: pytest.FixtureRequest
) -> None:
    ran = {item.path.name for item in request.session.items if item.name != COVERAGE_TEST}
    if not set(SUITES) <= ran:
        pytest.skip("needs the whole contract suite in this session")
    routes = [(a.name, a.method, route_pattern(a.path)) for a in REGISTRY]
    answered: set[str] = set()
    for match in ACCESS.finditer((live_server.home / "serve.log").read_text()):
        if not match["status"].startswith("2"):
            continue
        for name, method, pattern in routes:
            if method == match["method"] and pattern.fullmatch(match["path"]):
                answered.add(name)
                break
    missing = sorted({name for name, _, _ in routes} - answered)
    assert not missing, f"no contract test reaches these actions with a 2xx: {missing}"
