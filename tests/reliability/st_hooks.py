"""Schemathesis hooks (loaded through SCHEMATHESIS_HOOKS): JSONL responses are checked too.

The published document describes an application/jsonl answer as the list of its lines, each a
JSON object; this deserializer reads it so, and a line that is not JSON fails the check.
"""

from __future__ import annotations

import json
import os
from typing import Any

import schemathesis


@schemathesis.deserializer("application/jsonl")
def jsonl_lines(_ctx: Any, response: Any) -> list[Any]:
    text = response.content.decode(response.encoding or "utf-8")
    return [json.loads(line) for line in text.splitlines() if line.strip()]


# The run's own key and a spare one, by id (set by the test). A call that would revoke the run's
# key revokes the spare instead: the call is still made (and succeeds), and the rest of the run
# is not answered 401 because the fuzzer found its own key in `list_tokens`.
OWN_KEY = "OBK_FUZZ_KEY_ID"
SPARE_KEY = "OBK_FUZZ_SPARE_KEY_ID"


@schemathesis.hook
def before_call(_ctx: Any, case: Any, _kwargs: dict[str, Any]) -> None:
    own, spare = os.environ.get(OWN_KEY), os.environ.get(SPARE_KEY)
    params = case.path_parameters
    if own and spare and params and params.get("tokenId") == own:
        params["tokenId"] = spare


@schemathesis.hook
def filter_failure(_ctx: Any, _failure: Any, _case: Any, response: Any) -> bool:
    """Keep every failure but the designed answer to a model no provider serves: a well-formed
    model string the schema allows may name one, and that is a 502 `provider_error`
    (docs/limits.md), the model's provider being the gateway that failed."""
    if response.status_code != 502:
        return True
    try:
        body = json.loads(response.content)
    except ValueError:
        return True
    message = str(body.get("message", "")) if isinstance(body, dict) else ""
    return not message.startswith("no provider for model ")
