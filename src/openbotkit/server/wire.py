"""Wire adapters: how an action whose HTTP form is not plain JSON plugs into the server.

The route builder (server/routes.py) has no per-action code. Most actions need none: their input
is the path ids plus the query string (GET) or a JSON body (POST), and their output is JSON. An
action whose wire form differs registers a `WireAdapter` here, by action name, from its own module:

- `read_input(request)`: build the input dict from the request (multipart or raw-body uploads).
  The path ids are merged in afterwards.
- `render(request, output)`: turn the action's output into a Response (binary downloads), or
  return None to fall back to JSON.
- `account(request, engine)`: resolve the acting account (or key) when the default Bearer rule
  is not the whole story (public files download without a secret).
- `render_error(request, error)`: answer an action's error in the wire's own way (a download
  of a file without content is 204 for a binary Accept), or None for the usual error body.
- `any_accept`: the renderer answers every Accept itself (a download sends bytes for anything
  but application/json), so the server refuses no media type for this action.

Routes that are not actions at all (a presigned upload target, say) go in `EXTRA_ROUTES`.
JSONL streams need no adapter: an action declaring `extensions["stream"]` (a generator of
`{"type", "data"}` events) is streamed whenever the client sends `Accept: application/jsonl`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute

from openbotkit.errors import ObkError

if TYPE_CHECKING:
    from openbotkit.access import Key
    from openbotkit.engine import Engine


@dataclass(frozen=True)
class WireAdapter:
    read_input: Callable[[Request], Awaitable[dict[str, Any]]] | None = None
    render: Callable[[Request, BaseModel], Response | None] | None = None
    account: Callable[[Request, Engine], Awaitable[str | Key]] | None = None
    render_error: Callable[[Request, ObkError], Response | None] | None = None
    any_accept: bool = False


ADAPTERS: dict[str, WireAdapter] = {}
EXTRA_ROUTES: list[BaseRoute] = []


def register_adapter(action_name: str, adapter: WireAdapter) -> None:
    if action_name in ADAPTERS:
        raise ValueError(f"a wire adapter for {action_name!r} is registered twice")
    ADAPTERS[action_name] = adapter
