"""How each kind of action block runs: `fetch`, dataset `search`, `bot` (ask another bot) and
and the rendering of parameters and secrets every kind shares (`mcp/install` runs in
services/mcp_remote.py). services/tools.py decides what to run and shapes the outcome; this
module does the I/O.

Every outbound request goes through the fetcher (ingestion/fetch.py): public addresses only
unless OBK_FETCH_ALLOW_HOSTS names the host (or OBK_ALLOW_PRIVATE_URLS is set), the connection
pinned to the checked address, one total deadline, a bounded response.
"""

from __future__ import annotations

import base64
import html.parser
import json
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, quote_plus, urlencode, urlsplit

from openbotkit.abilities import instruction as fmt
from openbotkit.errors import ObkError

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from openbotkit.services.context import AccountScope

    # How a bot is asked: (the asking scope, the bot's id, the prompt) to that bot's completion
    # events. The completion running the tools passes its own (completion.ask_bot) down, so
    # this module, below the completion, never imports it.
    Asker = Callable[[AccountScope, str, str], Iterator[dict[str, Any]]]

MAX_READ_BYTES = 256 * 1024  # of a fetch's response: the model reads MAX_RESULT_CHARS at most
MAX_SEARCH_RECORDS = 5
MAX_BOT_DEPTH = 3  # bots asking bots: at most this many levels below the conversation's bot

_PARAM = re.compile(r"\$\[(?P<inner>[^\]\n]*)\]")
_PARAM_NAME = re.compile(r"\s*([A-Za-z_][A-Za-z0-9_]*)")
_SECRET = re.compile(r"\$\{SECRET_(?P<name>[A-Z0-9][A-Z0-9_]*)\}")
_FILLED = re.compile(r"\$\[(?P<inner>[^\]\n]*)\]|\$\{SECRET_(?P<secret>[A-Z0-9][A-Z0-9_]*)\}")
_MISSING = object()
_TEXT_TYPES = ("text/", "application/json", "application/xml", "application/yaml")


class Failed(Exception):
    """A call that cannot go on; the message is what the model (and the activity) reads."""


def left(deadline: float) -> float:
    """Seconds until `deadline`; a call whose time is up fails here."""
    remaining = deadline - time.monotonic()
    if remaining <= 0:
        raise Failed("the call ran out of time")
    return remaining


def forms_of(value: str) -> set[str]:
    """The ways a secret value may come back in text: as is, URL-encoded, JSON-quoted, base64."""
    if len(value) < 4:  # too short to cut out of text without cutting everything
        return set()
    encoded = base64.b64encode(value.encode()).decode()
    return {value, quote(value, safe=""), quote_plus(value), json.dumps(value)[1:-1], encoded}


# -- arguments and rendering --------------------------------------------------------------------


def validate(schema: Mapping[str, Any], arguments: Any) -> None:
    """Raise Failed naming the first argument that does not fit `schema` and the rule."""
    # jsonschema comes with the mcp SDK; it has no type information.
    from jsonschema import Draft202012Validator  # type: ignore[import-untyped]
    from jsonschema.exceptions import SchemaError  # type: ignore[import-untyped]

    if not isinstance(arguments, dict):
        raise Failed("arguments must be an object of parameter names to values")
    try:
        Draft202012Validator.check_schema(schema)
    except SchemaError:
        return  # a remote MCP server's schema we cannot read: the server checks its arguments
    errors = sorted(Draft202012Validator(schema).iter_errors(arguments), key=lambda e: e.path)
    if not errors:
        return
    error = errors[0]
    where = ".".join(str(p) for p in error.absolute_path)
    if error.validator == "required":
        missing = next((r for r in error.validator_value if r not in error.instance), "?")
        raise Failed(f"parameter {missing!r} is required")
    if error.validator == "additionalProperties":
        known = ", ".join(sorted(schema.get("properties") or {})) or "none"
        extra = sorted(set(error.instance) - set(schema.get("properties") or {}))
        raise Failed(f"parameter {extra[0]!r} is not a parameter of this tool (known: {known})")
    if error.validator == "enum":
        options = ", ".join(str(v) for v in error.validator_value)
        raise Failed(f"parameter {where!r} must be one of {options}")
    if error.validator == "type":
        raise Failed(f"parameter {where!r} must be of type {error.validator_value}")
    raise Failed(f"parameter {where or '(arguments)'!r} breaks the rule {error.validator}")


def _param_name(inner: str) -> str:
    found = _PARAM_NAME.match(inner)
    return found[1] if found else inner


def render(
    value: Any,
    params: Mapping[str, fmt.Parameter],
    arguments: Mapping[str, Any],
    secrets: Mapping[str, str],
) -> Any:
    """The body with every `$[...]` and `${SECRET_...}` replaced, key by key: a string that is
    one `j` parameter becomes its JSON value; an optional parameter not given drops the key it
    alone fills (and is empty text inside other text)."""
    if isinstance(value, dict):
        out = {}
        for key, item in value.items():
            rendered = render(item, params, arguments, secrets)
            if rendered is not _MISSING:
                out[key] = rendered
        return out
    if isinstance(value, list):
        items = [render(v, params, arguments, secrets) for v in value]
        return [v for v in items if v is not _MISSING]
    if not isinstance(value, str):
        return value
    whole = _PARAM.fullmatch(value.strip())
    if whole is not None:
        name = _param_name(whole["inner"])
        if name not in arguments or arguments[name] is None:
            return _MISSING
        param = params.get(name)
        if param is not None and "j" in param.flags:
            return arguments[name]

    def fill(found: re.Match[str]) -> str:
        if found["secret"] is not None:
            return secrets.get(found["secret"], "")
        name = _param_name(found["inner"])
        given = arguments.get(name)
        if given is None:
            return ""
        param = params.get(name)
        flags = param.flags if param is not None else ()
        text = given if isinstance(given, str) and "j" not in flags else json.dumps(given)
        return quote(text, safe="") if "euc" in flags else text

    # One pass: a parameter's value that spells ${SECRET_X} stays that text, and a secret's
    # value that spells $[x] is not a parameter.
    return _FILLED.sub(fill, value)


def _params_in(template: Any) -> list[str]:
    return [_param_name(m["inner"]) for m in _PARAM.finditer(str(template))]


def check_headers(headers: Mapping[str, str], templates: Mapping[str, Any]) -> None:
    """Refuse a header whose name or value would hold a line break (request smuggling), a NUL
    or a character HTTP headers cannot carry, naming the parameter that brought it."""
    for name, value in headers.items():
        template = templates.get(name, "")
        source = _params_in(template) or _params_in(name)
        what = f"parameter {source[0]!r}" if source else "the header"
        if any(c in name + value for c in "\r\n\0"):
            raise Failed(
                f"{what}: header {name!r} may not hold a line break or NUL (refused, not sent)"
            )
        if not (name + value).isascii():
            raise Failed(f"{what}: header {name!r} may hold ASCII characters only (not sent)")


# -- running ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Request:
    """A call to run: the action block, its parameters, the model's arguments and the secret
    values each `${SECRET_...}` stands for."""

    action: fmt.Action
    params: Mapping[str, fmt.Parameter]
    arguments: Mapping[str, Any]
    secrets: Mapping[str, str]
    linked_bot_id: str | None


def run(
    scope: AccountScope, request: Request, deadline: float, ask: Asker | None = None
) -> tuple[bool, str, str | None]:
    """Run a fetch, search or bot block: (ok, result, error)."""
    if request.action.type == "fetch":
        return _fetch(scope, request, deadline)
    if request.action.type == "search":
        return _search(scope, request, deadline)
    if request.action.type == "bot":
        return _ask_bot(scope, request, deadline, ask)
    raise Failed(f"the action {request.action.type} cannot run here")


def _origin(url: str) -> tuple[str, str, int | None]:
    parts = urlsplit(url)
    try:
        port = parts.port
    except ValueError:
        raise Failed(f"not a valid URL: {url}") from None
    return parts.scheme.lower(), (parts.hostname or "").lower(), port


def _authority(template: str) -> str:
    rest = template.split("://", 1)[1] if "://" in template else template
    return re.split(r"[/?#]", rest, maxsplit=1)[0]


def _fetch(scope: AccountScope, request: Request, deadline: float) -> tuple[bool, str, str | None]:
    from openbotkit.ingestion.fetch import Send
    from openbotkit.services.file_content import fetcher

    body = request.action.body
    template = str(body["url"])
    rendered: dict[str, Any] = render(body, request.params, request.arguments, request.secrets)
    url = str(rendered.get("url") or "")
    if not url:
        raise Failed(f"parameter {(_params_in(template) or ['url'])[0]!r} gave an empty URL")
    if "://" in template and "$[" not in _authority(template):
        fixed = _PARAM.sub("", _SECRET.sub("", template))
        if _origin(url) != _origin(fixed):
            names = ", ".join(repr(n) for n in _params_in(template))
            raise Failed(f"parameter {names} may not change the URL's host (refused)")
    elif request.secrets:
        dynamic = _params_in(_authority(template)) or _params_in(template)
        names = ", ".join(repr(n) for n in dynamic)
        raise Failed(
            f"the URL's host comes from parameter {names} and the request carries a secret:"
            " a secret goes only to a host the instruction names (refused)"
        )
    method = str(rendered.get("method") or "GET").upper()
    if method not in fmt.METHODS:
        source = (_params_in(body.get("method")) or ["method"])[0]
        raise Failed(f"parameter {source!r}: {method!r} is not one of {sorted(fmt.METHODS)}")
    headers = {
        str(k): v if isinstance(v, str) else json.dumps(v)
        for k, v in (rendered.get("headers") or {}).items()
    }
    check_headers(headers, body.get("headers") or {})
    query = rendered.get("query")
    if isinstance(query, dict) and query:
        pairs = {k: v if isinstance(v, str) else json.dumps(v) for k, v in query.items()}
        url += ("&" if urlsplit(url).query else "?") + urlencode(pairs)
    content = _content(rendered.get("body"), headers)
    options = rendered.get("options") or {}
    base = fetcher(scope.settings)
    timeout = left(deadline)
    if isinstance(options.get("timeout"), int) and options["timeout"] > 0:
        timeout = min(timeout, options["timeout"] / 1000)
    bounded = replace(base, timeout_s=min(base.timeout_s, timeout))
    send = Send(method, content, headers)
    try:
        with bounded.open(url, send=send, error_statuses=True, field="/url") as fetched:
            data = _read_some(fetched.chunks)
            status, content_type = fetched.fetched.status, fetched.fetched.content_type
            answered = fetched.fetched.url  # after redirects
    except ObkError as exc:
        if any(p.rule == "fetch_timeout" for p in exc.details):
            seconds = bounded.timeout_s
            raise Failed(f"{url} took longer than the {seconds:.3g} s the call had") from None
        raise Failed(str(exc)) from None
    text = _as_text(data, content_type, str(options.get("format") or ""))
    if status >= 400:
        return False, text, f"HTTP {status} from {urlsplit(answered).hostname}"
    return True, text, None


def _content(body: Any, headers: dict[str, str]) -> bytes | None:
    """The request body: a mapping as JSON (or a form, when the headers say so), text as is."""
    if body is None or body is _MISSING:
        return None
    content_type = next((v for k, v in headers.items() if k.lower() == "content-type"), None)
    if isinstance(body, (dict, list)):
        if content_type and "x-www-form-urlencoded" in content_type and isinstance(body, dict):
            return urlencode({k: str(v) for k, v in body.items()}).encode()
        if content_type is None:
            headers["Content-Type"] = "application/json"
        return json.dumps(body).encode()
    if content_type is None:
        headers["Content-Type"] = "text/plain; charset=utf-8"
    return str(body).encode()


def _read_some(chunks: Any) -> bytes:
    """Up to MAX_READ_BYTES of a body; the rest is never read (the connection closes)."""
    data = bytearray()
    for chunk in chunks:
        data += chunk
        if len(data) >= MAX_READ_BYTES:
            break
    return bytes(data[:MAX_READ_BYTES])


class _TextOf(html.parser.HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.parts: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag: str, attrs: Any) -> None:
        self._skip += tag in ("script", "style")

    def handle_endtag(self, tag: str) -> None:
        self._skip -= tag in ("script", "style") and self._skip > 0

    def handle_data(self, data: str) -> None:
        if not self._skip and data.strip():
            self.parts.append(data.strip())


def _as_text(data: bytes, content_type: str, format: str) -> str:
    """What the model reads of a response: its text (HTML as text with `format: text`)."""
    if not data:
        return ""
    if not content_type.startswith(_TEXT_TYPES) and not content_type.endswith(("+json", "+xml")):
        return f"({content_type}, {len(data)} bytes: not text)"
    text = data.decode("utf-8", errors="replace")
    if content_type == "text/html" and format == "text":
        parser = _TextOf()
        parser.feed(text)
        text = "\n".join(parser.parts)
    return text


def _search(scope: AccountScope, request: Request, deadline: float) -> tuple[bool, str, str | None]:
    from openbotkit.services import datasets
    from openbotkit.services.search import search_records

    body = request.action.body
    query = render(body.get("query"), request.params, request.arguments, request.secrets)
    target = render(request.action.target_id, request.params, request.arguments, {})
    if not isinstance(query, str) or not query.strip():
        raise Failed(f"parameter {(_params_in(body.get('query')) or ['query'])[0]!r} is empty")
    if not isinstance(target, str) or not target:
        raise Failed("the search names no dataset")
    left(deadline)
    with scope.transaction(write=False) as ctx:
        dataset = datasets.get(ctx, target)
        found = search_records(ctx, dataset, query, max_records=MAX_SEARCH_RECORDS)
        dataset_id = dataset.id
    records = [
        {"id": r.id, "text": r.text, "source": r.source, "score": round(r.score, 4)} for r in found
    ]
    return True, json.dumps({"datasetId": dataset_id, "records": records}), None


def _ask_bot(
    scope: AccountScope, request: Request, deadline: float, ask: Asker | None
) -> tuple[bool, str, str | None]:
    """The other bot's grounded answer to the rendered prompt. Bots asking each other are
    bounded: a bot already asked on this chain is not asked again, and the chain is at most
    MAX_BOT_DEPTH deep. The chain travels on the scope (`AccountScope.asking`): the other bot's
    completion gets a scope naming it, and passes that scope to any call it makes."""
    from openbotkit.services import bots

    body = request.action.body
    prompt = render(body.get("prompt"), request.params, request.arguments, request.secrets)
    target = render(request.action.target_id, request.params, request.arguments, {})
    target = target if isinstance(target, str) and target else request.linked_bot_id
    if not isinstance(prompt, str) or not prompt.strip():
        raise Failed(f"parameter {(_params_in(body.get('prompt')) or ['prompt'])[0]!r} is empty")
    if not target:
        raise Failed("the ability names no bot to ask")
    with scope.transaction(write=False) as ctx:
        bot_id = bots.get(ctx, target).id
    chain = scope.asking
    if bot_id in chain:
        path = " -> ".join((*chain, bot_id))
        raise Failed(f"bot {bot_id} is already answering on this chain ({path}): not asked again")
    if len(chain) >= MAX_BOT_DEPTH:
        raise Failed(f"bots asking bots stop at {MAX_BOT_DEPTH} levels")
    timeout = body.get("timeout")
    if isinstance(timeout, int):
        deadline = min(deadline, time.monotonic() + timeout / 1000)
    asked = replace(scope, asking=(*chain, bot_id))
    if ask is None:
        raise Failed("asking another bot needs the completion this call runs in")
    events = ask(asked, bot_id, prompt)
    try:
        for event in events:
            if time.monotonic() > deadline:
                raise Failed(f"bot {bot_id} did not answer in time")
            if event.get("type") == "result":
                return True, str(event["data"]["text"]), None
    finally:
        # A generator's close stops the generation (and settles its metering) at once.
        close = getattr(events, "close", None)
        if close is not None:
            close()
    raise Failed(f"bot {bot_id} gave no answer")
