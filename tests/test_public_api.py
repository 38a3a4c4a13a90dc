from __future__ import annotations

import openbotkit


def test_public_api_is_pinned() -> None:
    assert sorted(openbotkit.__all__) == sorted(
        ["Action", "Effect", "Engine", "ObkError", "REGISTRY", "Settings"]
    )
    for name in openbotkit.__all__:
        assert getattr(openbotkit, name) is not None


def test_execute_validates_like_every_surface(engine: openbotkit.Engine) -> None:
    bot = engine.execute("create_bot", {"name": "Py"})
    assert engine.execute("fetch_bot", {"botId": bot["id"]})["name"] == "Py"
    try:
        engine.execute("create_bot", {"nope": 1})
    except openbotkit.ObkError as err:
        assert err.code == "invalid_input" and err.details[0].pointer == "/nope"
    else:
        raise AssertionError("unknown key accepted")
    assert engine.execute("list_bots", account="someone-else")["items"] == []
