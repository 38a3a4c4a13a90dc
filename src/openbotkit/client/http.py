"""The connector's HTTP backend: the same actions against any ChatBotKit-compatible server
(`obk serve`, or ChatBotKit's hosted API), with server errors mapped back to the same codes."""

from __future__ import annotations

import json
import mimetypes
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

import httpx
from pydantic import BaseModel

from openbotkit.actions import Action
from openbotkit.errors import InvalidInput, ObkError, Problem, ProviderError, error_class_for
from openbotkit.localfiles import target_in

HOSTED = "api.chatbotkit.com"


def _query_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return json.dumps(value)
    return str(value)


def _flatten(prefix: str, value: dict[str, Any], into: dict[str, str]) -> None:
    """`{"a": {"b": 1}}` under `meta` -> `meta.a.b=1`: a dotted key is a nested path (§1.4)."""
    for key, sub in value.items():
        if isinstance(sub, dict):
            _flatten(f"{prefix}.{key}", sub, into)
        elif sub is not None:
            into[f"{prefix}.{key}"] = _query_value(sub)


def _upload_path(data: dict[str, Any]) -> tuple[Path, dict[str, str]]:
    """A local `path` upload becomes a raw-body upload (spec §7.3 mode 5), which every
    ChatBotKit-compatible server takes; `type` and `name` travel in the headers."""
    path = Path(data.pop("path"))
    if not path.is_file():
        raise InvalidInput(f"no such file: {path}", details=[Problem("/path", "exists", str(path))])
    name = data.pop("name", None) or path.name
    ctype = data.pop("type", None) or mimetypes.guess_type(name)[0] or "application/octet-stream"
    if data:
        raise InvalidInput(
            "give either `path` or `file`, not both",
            details=[Problem("/file", "one_of", "file or path")],
        )
    disposition = f"attachment; filename={quote(name)}"
    return path, {"Content-Type": ctype, "Content-Disposition": disposition}


class HttpBackend:
    """Runs actions over HTTP; one short-lived client per call keeps it simple and thread-safe."""

    def __init__(
        self,
        base_url: str,
        secret: str | None,
        *,
        transport: httpx.BaseTransport | None = None,
        timeout: float = 60.0,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        # ChatBotKit's hosted API serves /v1; every other server (obk serve too) /api/v1.
        self.prefix = "/v1" if urlsplit(self.base_url).hostname == HOSTED else "/api/v1"
        self.headers = {"Accept": "application/json"}
        if secret:
            self.headers["Authorization"] = f"Bearer {secret}"
        self.transport = transport
        self.timeout = timeout

    def _request(self, act: Action, inp: BaseModel) -> tuple[str, dict[str, Any], Any]:
        """URL, query params and JSON body for one action call."""
        data = inp.model_dump(mode="json", by_alias=True, exclude_unset=True)
        path = act.path
        for param in act.path_params:
            path = path.replace("{" + param + "}", quote(str(data.pop(param)), safe="@"))
        url = self.base_url + self.prefix + path
        if act.method != "GET":
            return url, {}, data
        query: dict[str, str] = {}
        for key, value in data.items():
            if isinstance(value, dict):
                _flatten(key, value, query)
            elif value is not None:
                query[key] = _query_value(value)
        return url, query, None

    def _client(self) -> httpx.Client:
        return httpx.Client(headers=self.headers, transport=self.transport, timeout=self.timeout)

    def run(self, act: Action, inp: BaseModel) -> dict[str, Any]:
        url, query, body = self._request(act, inp)
        # `path` names a file on this machine: sent as the body (upload) or written (download).
        local = body.get("path") if isinstance(body, dict) else query.pop("path", None)
        try:
            with self._client() as client:
                if local is not None and act.method != "GET":
                    path, headers = _upload_path(body)
                    with path.open("rb") as content:
                        resp = client.post(url, content=content, headers=headers)
                else:
                    resp = client.request(act.method, url, params=query, json=body)
                if resp.status_code >= 400:
                    raise self._error(resp)
                result = self._json(resp)
                if local is not None and act.method == "GET":
                    result["path"] = self._save(client, url, Path(local), result)
        except httpx.HTTPError as exc:
            raise ProviderError(f"{self.base_url}: {exc}") from exc
        return result

    def _json(self, resp: httpx.Response) -> dict[str, Any]:
        try:
            result = resp.json()
        except ValueError:
            raise ProviderError(f"{self.base_url}: a success without a JSON body") from None
        if not isinstance(result, dict):
            raise ProviderError(f"{self.base_url}: expected a JSON object, got {result!r:.80}")
        return result

    def _save(self, client: httpx.Client, url: str, target: Path, info: dict[str, Any]) -> str:
        """Stream a download's bytes into `target` (a directory gets the file's own name)."""
        if target.is_dir():
            # The name comes from the server: reduced to a plain name so it stays inside.
            target = target_in(target, info.get("name"), f"{info['id']}.bin")
        with client.stream("GET", url, headers={"Accept": "application/octet-stream"}) as resp:
            if resp.status_code >= 400:
                resp.read()
                raise self._error(resp)
            if resp.status_code == 204:
                raise InvalidInput(f"file {info['id']} has no content yet: upload it first")
            with target.open("wb") as out:
                for chunk in resp.iter_bytes():
                    out.write(chunk)
        return str(target)

    def stream(self, act: Action, inp: BaseModel) -> Iterator[dict[str, Any]]:
        """A streaming action's JSONL events, as they arrive."""
        url, query, body = self._request(act, inp)
        try:
            with (
                self._client() as client,
                client.stream(
                    act.method,
                    url,
                    params=query,
                    json=body,
                    headers={"Accept": "application/jsonl"},
                ) as resp,
            ):
                if resp.status_code >= 400:
                    resp.read()
                    raise self._error(resp)
                for line in resp.iter_lines():
                    if line.strip():
                        yield json.loads(line)
        except httpx.HTTPError as exc:
            raise ProviderError(f"{self.base_url}: {exc}") from exc

    def _error(self, resp: httpx.Response) -> ObkError:
        """Map `{"message", "code"}` (and our `details`) back onto the connector's errors."""
        message, code, details = resp.text[:500] or resp.reason_phrase, None, []
        try:
            body = resp.json()
        except ValueError:
            body = None
        if isinstance(body, dict):
            message = str(body.get("message") or message)
            code = body.get("code") if isinstance(body.get("code"), str) else None
            for d in body.get("details") or []:
                if isinstance(d, dict):
                    details.append(
                        Problem(
                            str(d.get("pointer", "")),
                            str(d.get("rule", "")),
                            str(d.get("message", "")),
                        )
                    )
        # A remote server's own failure is, for the connector, a provider error (502).
        cls = (
            ProviderError
            if resp.status_code >= 500
            else error_class_for(code=code, status=resp.status_code)
        )
        return cls(message, details=details)
