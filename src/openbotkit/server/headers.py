"""Security headers on every answer, by surface: the console, the widget script, the API.

- The console (`/`, `/console/...`) loads its own modules and styles only and has no inline script
  or style, so its Content-Security-Policy allows `'self'` and nothing else; it calls the API on
  its own origin, holds a secret, and may be framed by no page (clickjacking), old browsers told
  so by `X-Frame-Options`.
- The widget script (`/widget.js`) runs inside other sites' pages: `nosniff` and nothing that
  would stop a page on another origin from loading it (no framing rule: a script is not framed,
  and its host page's CSP is its own).
- Everything else is the API (JSON, JSONL, file downloads, `/mcp`): `default-src 'none'` with
  `sandbox`, so a downloaded file rendered by a browser on this origin (an uploaded HTML page)
  runs no script and reaches nothing, and no page may frame it.

Every answer gets `X-Content-Type-Options: nosniff` and `Referrer-Policy: no-referrer`. A header
a route set itself is left as it is.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

_COMMON = {
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
}
CONSOLE_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:;"
    " connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none';"
    " form-action 'self'; frame-ancestors 'none'"
)
API_CSP = "default-src 'none'; frame-ancestors 'none'; sandbox"
CONSOLE = {**_COMMON, "content-security-policy": CONSOLE_CSP, "x-frame-options": "DENY"}
WIDGET = {**_COMMON, "cross-origin-resource-policy": "cross-origin"}
API = {**_COMMON, "content-security-policy": API_CSP, "x-frame-options": "DENY"}


def headers_for(path: str) -> dict[str, str]:
    """The security headers of the surface `path` belongs to."""
    if path == "/widget.js":
        return WIDGET
    if path == "/" or path.startswith("/console/"):
        return CONSOLE
    return API


class SecurityHeaders:
    """Pure ASGI (streamed answers pass through untouched): adds the headers of the request's
    surface to the start of every HTTP answer, preflights and errors included."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        extra = headers_for(scope["path"])

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                raw: list[tuple[bytes, bytes]] = list(message.get("headers", []))
                present = {name.lower() for name, _ in raw}
                raw += [
                    (name.encode(), value.encode())
                    for name, value in extra.items()
                    if name.encode() not in present
                ]
                message = {**message, "headers": raw}
            await send(message)

        await self.app(scope, receive, send_with_headers)
