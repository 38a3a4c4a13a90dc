"""A remote MCP server's tools, for an `mcp/install` ability: listed and called with the official
`mcp` client over Streamable HTTP.

The client's HTTP requests go through a transport that applies the fetcher's rule to each one
(ingestion/fetch.py: public addresses only unless OBK_FETCH_ALLOW_HOSTS names the host, or
OBK_ALLOW_PRIVATE_URLS is set; the socket pinned to the checked address, the TLS name kept) and
cuts each response at MAX_MCP_BYTES. The whole exchange (connect, initialize, list or call)
ends at one deadline. Imported only when an MCP ability is offered or called.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import hashlib
import json
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

import anyio
import anyio.to_thread
import httpx2
import mcp_types as types
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

from openbotkit.errors import ObkError
from openbotkit.ingestion.fetch import Resolver, Target, check_url, hosts_resolver, system_resolver
from openbotkit.services.ability_kinds import Failed

if TYPE_CHECKING:
    from openbotkit.settings import Settings

MAX_MCP_BYTES = 1024 * 1024  # of one MCP response (or server-sent event)
MAX_MCP_TOOLS = 32  # tools one MCP server may add
LIST_DEADLINE_S = 10.0  # listing a server's tools when the tools are offered
CACHE_S = 60.0

T = TypeVar("T")


@dataclass(frozen=True)
class Endpoint:
    url: str
    headers: dict[str, str]


@dataclass(frozen=True)
class RemoteTool:
    name: str
    description: str | None
    input_schema: dict[str, Any]


_cache: dict[str, tuple[float, list[RemoteTool]]] = {}
_cache_lock = threading.Lock()


def _run_async(work: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine to its end from sync code, on a thread of its own if this one already
    runs an event loop."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(work)
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, work).result()


def remote_tools(
    settings: Settings, ability_id: str, endpoint: Endpoint, deadline_s: float
) -> list[RemoteTool]:
    """The server's tools (at most MAX_MCP_TOOLS), remembered for CACHE_S per ability, URL
    and headers (the key is a digest: no credential is kept in it)."""
    digest = hashlib.sha256(
        json.dumps([ability_id, endpoint.url, sorted(endpoint.headers.items())]).encode()
    ).hexdigest()
    now = time.monotonic()
    with _cache_lock:
        hit = _cache.get(digest)
    if hit is not None and hit[0] > now:
        return hit[1]
    tools = _run_async(_with_client(settings, endpoint, deadline_s, _list))
    with _cache_lock:
        _cache[digest] = (now + CACHE_S, tools)
    return tools


def call_remote_tool(
    settings: Settings,
    endpoint: Endpoint,
    name: str,
    arguments: Mapping[str, Any],
    deadline_s: float,
) -> tuple[bool, str]:
    """Call one of the server's tools: (not isError, its text content, else its structured
    content as JSON)."""

    async def call(client: Client) -> tuple[bool, str]:
        result = await client.call_tool(name, dict(arguments))
        texts = [c.text for c in result.content if isinstance(c, types.TextContent)]
        others = [c.type for c in result.content if not isinstance(c, types.TextContent)]
        text = "\n".join(texts)
        if not text and result.structured_content is not None:
            text = json.dumps(result.structured_content)
        text += "".join(f"\n[{kind} content left out]" for kind in others)
        return not result.is_error, text

    return _run_async(_with_client(settings, endpoint, deadline_s, call))


async def _list(client: Client) -> list[RemoteTool]:
    tools: list[RemoteTool] = []
    cursor: str | None = None
    while len(tools) < MAX_MCP_TOOLS:
        page = await client.list_tools(cursor=cursor)
        tools.extend(RemoteTool(t.name, t.description, dict(t.input_schema)) for t in page.tools)
        cursor = page.next_cursor
        if not cursor:
            break
    return tools[:MAX_MCP_TOOLS]


async def _with_client(
    settings: Settings,
    endpoint: Endpoint,
    deadline_s: float,
    work: Callable[[Client], Awaitable[T]],
) -> T:
    """Connect (every request checked and pinned, responses bounded), `work(client)`, all
    within `deadline_s`; any failure is Failed with a plain reason."""
    transport = _PinnedTransport(settings, hosts_resolver(settings.resolve_hosts, system_resolver))
    await anyio.to_thread.run_sync(transport.check, endpoint.url)
    try:
        with anyio.fail_after(deadline_s):
            async with (
                httpx2.AsyncClient(
                    transport=transport,
                    headers=endpoint.headers,
                    timeout=deadline_s,
                    trust_env=False,
                    follow_redirects=False,
                ) as http,
                Client(
                    streamable_http_client(
                        endpoint.url, http_client=http, max_sse_event_size=MAX_MCP_BYTES
                    )
                ) as client,
            ):
                return await work(client)
    except TimeoutError:
        raise Failed(f"the MCP server did not answer within {deadline_s:g} s") from None
    except Exception as exc:  # ExceptionGroups from the client's task group, mostly
        raise Failed(f"the MCP server at {endpoint.url} failed: {_reason(exc)}") from None


def _reason(exc: BaseException) -> str:
    """The innermost failure's message, out of exception groups."""
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    if isinstance(exc, (Failed, ObkError)):
        return str(exc)
    if isinstance(exc, TimeoutError):
        return "timed out"
    return type(exc).__name__ + (f": {str(exc)[:200]}" if str(exc) else "")


class _PinnedTransport(httpx2.AsyncBaseTransport):
    """Each request's host checked by the fetcher's rule, the socket pinned to the checked
    address (Host header and TLS name unchanged), each response cut at MAX_MCP_BYTES."""

    def __init__(self, settings: Settings, resolver: Resolver) -> None:
        self.settings, self.resolver = settings, resolver
        self.inner = httpx2.AsyncHTTPTransport(trust_env=False)

    def check(self, url: str) -> Target:
        try:
            return check_url(
                url,
                allow_private=self.settings.allow_private_urls,
                allow_hosts=self.settings.fetch_allow_list,
                resolver=self.resolver,
                field="/url",
            )
        except ObkError as exc:
            raise Failed(str(exc)) from None

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        target = await anyio.to_thread.run_sync(self.check, str(request.url))
        original = request.url
        request.url = original.copy_with(host=target.addresses[0])
        request.headers["Host"] = original.netloc.decode("ascii")
        if original.scheme == "https":
            request.extensions = {**request.extensions, "sni_hostname": target.host}
        response = await self.inner.handle_async_request(request)
        response.stream = _CappedStream(response.stream)
        return response

    async def aclose(self) -> None:
        await self.inner.aclose()


class _CappedStream(httpx2.AsyncByteStream):
    def __init__(self, inner: Any) -> None:
        self.inner = inner

    async def __aiter__(self) -> AsyncIterator[bytes]:
        size = 0
        async for chunk in self.inner:
            size += len(chunk)
            if size > MAX_MCP_BYTES:
                raise Failed(f"the MCP server's response passed {MAX_MCP_BYTES} bytes")
            yield chunk

    async def aclose(self) -> None:
        await self.inner.aclose()
