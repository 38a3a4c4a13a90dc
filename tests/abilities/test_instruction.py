"""The instruction format on examples shaped like ChatBotKit's catalogue, and on broken ones."""

from __future__ import annotations

import pytest

from openbotkit.abilities.instruction import Parameter, format_secret, parse
from openbotkit.errors import InvalidInput

ORDER = """Look up an order by its number.

```fetch
method: GET
url: https://api.example.com/orders/$[orderId! euc|the order number, e.g. #A-12]
query:
  status: $[status? enum<open, closed>|only orders in this state]
headers:
  Authorization: ${SECRET_DEFAULT}
  X-Team: ${SECRET_TEAM_TOKEN}
```
"""


def test_fetch_block_gives_type_parameters_secrets_and_body() -> None:
    parsed = parse(ORDER)
    assert parsed.action is not None
    assert parsed.action.type == "fetch" and parsed.action.line == 3
    assert parsed.parameters == (
        Parameter("orderId", True, ("euc",), "the order number, e.g. #A-12", None, 5),
        Parameter("status", False, (), "only orders in this state", ("open", "closed"), 7),
    )
    assert [(s.name, s.line, s.is_default) for s in parsed.secrets] == [
        ("DEFAULT", 9, True),
        ("TEAM_TOKEN", 10, False),
    ]
    body = parsed.action.body
    # The body keeps parameters and references as written, for the code that fills them.
    assert body["url"].endswith("/orders/$[orderId! euc|the order number, e.g. #A-12]")
    assert body["headers"]["Authorization"] == "${SECRET_DEFAULT}"
    assert body["method"] == "GET"


def test_json_schema_of_the_parameters() -> None:
    assert parse(ORDER).json_schema() == {
        "type": "object",
        "properties": {
            "orderId": {"type": "string", "description": "the order number, e.g. #A-12"},
            "status": {
                "type": "string",
                "description": "only orders in this state",
                "enum": ["open", "closed"],
            },
        },
        "required": ["orderId"],
        "additionalProperties": False,
    }


@pytest.mark.parametrize(
    ("text", "kind", "key", "value"),
    [
        # ChatBotKit's dataset search: the dataset in the header, the body a single parameter.
        ("```dataset/search/id=ds_1\n$[query!|search query]\n```", "search", "query", None),
        (
            "```search\ndatasetId: '@kb'\nquery: $[q!|what to look for]\n```",
            "search",
            "query",
            None,
        ),
        ("```mcp/install\nhttps://mcp.example.com/mcp\n```", "mcp/install", "url", None),
        (
            "```mcp/install\nurl: https://mcp.notion.com/mcp\nprefix: notion\n"
            "headers:\n  Authorization: ${SECRET_DEFAULT}\n```",
            "mcp/install",
            "prefix",
            "notion",
        ),
        (
            "```bot/ask\nbotId: bot_1\nprompt: $[question!|the question]\n```",
            "bot",
            "botId",
            "bot_1",
        ),
        ("```bot\n$[question!|the question to ask]\n```", "bot", "prompt", None),
        (
            "```fetch\nmethod: POST\nurl: https://h/x\nbody:\n  content: $[content! ys|markdown]\n"
            "  data: $[payload? j|any JSON]\n```",
            "fetch",
            "method",
            "POST",
        ),
    ],
)
def test_catalogue_like_blocks_parse(text: str, kind: str, key: str, value: str | None) -> None:
    parsed = parse(text)
    assert parsed.action is not None and parsed.action.type == kind
    assert key in parsed.action.body
    if value is not None:
        assert parsed.action.body[key] == value


def test_search_header_names_the_dataset_and_flags_reach_the_schema() -> None:
    parsed = parse("```dataset/search/id=ds_1\n$[query!|search query]\n```")
    assert parsed.action is not None and parsed.action.target_id == "ds_1"
    payload = parse("```fetch\nurl: https://h\nbody:\n  d: $[p? j|any JSON]\n```")
    assert payload.json_schema()["properties"]["p"] == {"description": "any JSON"}
    assert payload.parameters[0].flags == ("j",)


def test_text_without_a_block_is_an_instruction_without_action() -> None:
    parsed = parse("Answer politely. Use $[ nothing here.")
    assert parsed.action is None and parsed.parameters == ()


def test_a_parameter_used_twice_is_one_parameter_required_if_either_is() -> None:
    parsed = parse("```fetch\nurl: https://h/$[id? euc|the id]\nquery:\n  again: $[id! euc]\n```")
    assert [(p.name, p.required, p.line) for p in parsed.parameters] == [("id", True, 2)]


@pytest.mark.parametrize(
    ("text", "line", "words"),
    [
        ("intro\n```fetch\nurl: https://h\n", 2, "never closed"),
        ("```fetch\nmethod: GET\nurl: https://h\n  bad: : x\n```", 4, "not valid YAML"),
        ("```fetch\nurl: https://h/$[id! euc|the id\n```", 2, "not closed with ]"),
        ("```fetch\nurl: https://h/$[id! zz|x]\n```", 2, "unknown flag 'zz'"),
        ("```fetch\nurl: https://h/$[! euc|x]\n```", 2, "no parameter name"),
        ("```fetch\nurl: https://h/$[a enum<>|x]\n```", 2, "lists no values"),
        ("```fetch\nmethod: GET\nurl: https://h\nverb: x\n```", 4, "no key 'verb'"),
        ("```fetch\nmethod: FETCH\nurl: https://h\n```", 2, "method 'FETCH'"),
        ("```fetch\nmethod: GET\n```", 1, "needs 'url'"),
        ("```fetch\n```", 1, "is empty"),
        ("```fetch\nurl: https://h\nheaders: [a, b]\n```", 3, "'headers' must be a mapping"),
        ("```fetch\nurl: https://h\nheaders:\n  A: ${SECRET_default}\n```", 4, "not a secret"),
        ("```fetch\nurl: https://h\nheaders:\n  A: ${SECRET_}\n```", 4, "not a secret"),
        ("text\n\n```shell\nrm -rf /\n```", 3, "unknown action block 'shell'"),
        ("```fetch/auth=internal\nurl: /x\n```", 1, "option 'auth'"),
        ("```search\n$[q!|query]\n```", 1, "names its dataset"),
        ("```dataset/search/id=((datasetId!|the id))\n$[q!|q]\n```", 1, "template field"),
        ("```email\nto: ((to! ys|recipient))\n```", 1, "unknown action block"),
        ("```fetch\nurl: ((url!|the url))\n```", 2, "template field ((url!|the url))"),
        ("```fetch\nurl: a\n```\n\n```fetch\nurl: b\n```", 5, "one action block"),
        ("```fetch\nurl: a\n```fetch\n```", 3, "still open"),
        ("```bot\nprompt: hi\ntimeout: 999999\n```", 3, "timeout"),
        ("```fetch\nurl: https://h/$[a euc|x]\nquery:\n  b: $[a ys|y]\n```", 4, "other flags"),
    ],
)
def test_malformed_instruction_names_the_line(text: str, line: int, words: str) -> None:
    with pytest.raises(InvalidInput) as err:
        parse(text)
    message = str(err.value)
    assert message.startswith(f"instruction line {line}: "), message
    assert words in message, message
    problem = err.value.details[0]
    assert problem.pointer == "/instruction" and problem.message == message


@pytest.mark.parametrize(
    ("kind", "value", "shown"),
    [
        ("plain", "abc", "abc"),
        ("template", "Token abc", "Token abc"),
        ("bearer", "abc", "Bearer abc"),
        ("basic", "user:pass", "Basic dXNlcjpwYXNz"),
    ],
)
def test_secret_formatting_by_type(kind: str, value: str, shown: str) -> None:
    assert format_secret(kind, value) == shown
