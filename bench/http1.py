"""A lean HTTP/1.1 keep-alive connection for load generators.

On a 2-core machine the generator's own CPU is taken from the server it measures: httpx costs
about 0.9 ms of CPU per request, which at 500 requests a second is a quarter of the machine,
and while the generator's event loop waits for a core every request in flight looks slower.
This connection writes a request and reads its whole answer with asyncio streams (about a
tenth of that CPU). It reads what `obk serve` sends: bodies sized by Content-Length or chunked.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any
from urllib.parse import urlencode, urlsplit


class Http1Error(Exception):
    """The connection failed or the answer could not be read (a transport error)."""


class Connection:
    """One keep-alive connection to `base` (http://host:port/prefix); one request at a time."""

    def __init__(self, base: str, headers: dict[str, str], timeout: float = 60) -> None:
        parts = urlsplit(base)
        self.host, self.port = parts.hostname or "127.0.0.1", parts.port or 80
        self.prefix = parts.path.rstrip("/")
        self.timeout = timeout
        fixed = {"Host": f"{self.host}:{self.port}", **headers}
        self._head = "".join(f"{k}: {v}\r\n" for k, v in fixed.items())
        self._streams: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None

    async def close(self) -> None:
        if self._streams is not None:
            self._streams[1].close()
            self._streams = None

    async def get(self, path: str, params: dict[str, Any] | None = None) -> tuple[int, bytes]:
        query = "?" + urlencode(params) if params else ""
        return await self.request("GET", path + query, None)

    async def post(self, path: str, body: Any) -> tuple[int, bytes]:
        return await self.request("POST", path, json.dumps(body).encode())

    async def request(self, method: str, path: str, body: bytes | None) -> tuple[int, bytes]:
        """(status, body) of one request; Http1Error when the exchange fails."""
        try:
            return await asyncio.wait_for(self._exchange(method, path, body), self.timeout)
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError,
                TimeoutError) as exc:  # fmt: skip
            await self.close()
            raise Http1Error(f"{method} {path}: {type(exc).__name__}: {exc}") from exc

    async def _exchange(self, method: str, path: str, body: bytes | None) -> tuple[int, bytes]:
        if self._streams is None:
            self._streams = await asyncio.open_connection(self.host, self.port)
        reader, writer = self._streams
        head = f"{method} {self.prefix}{path} HTTP/1.1\r\n{self._head}"
        if body is not None:
            head += f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
        writer.write(head.encode() + b"\r\n" + (body or b""))
        status_line, *lines = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1").split("\r\n")
        status = int(status_line.split(" ", 2)[1])
        fields = {}
        for line in lines:
            if line:
                name, _, value = line.partition(":")
                fields[name.strip().lower()] = value.strip()
        if "content-length" in fields:
            data = await reader.readexactly(int(fields["content-length"]))
        elif fields.get("transfer-encoding", "").lower() == "chunked":
            data = await _chunked(reader)
        else:
            raise ValueError("an answer with neither Content-Length nor chunked encoding")
        if fields.get("connection", "").lower() == "close":
            await self.close()
        return status, data


async def _chunked(reader: asyncio.StreamReader) -> bytes:
    out = bytearray()
    while True:
        size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
        if size == 0:
            await reader.readuntil(b"\r\n")  # no trailers from obk serve: the closing line
            return bytes(out)
        out += await reader.readexactly(size)
        await reader.readexactly(2)
