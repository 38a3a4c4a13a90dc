"""The reference server of bench/api.py: the work `obk serve` does for three routes, with nothing
but Starlette, the standard library's sqlite3 and orjson.

    python bench/api_reference.py --db PATH --port N

Per request, as obk does: hash the bearer token (SHA-256), look the account up in a dict that
remembers the secrets table's answer, read (or insert) the rows of the same indexed table of the
same SQLite file, and build the same JSON (camelCase keys, nulls left out). No validation
library, no ORM, no middleware, handlers run on the event loop: what the same work costs when
nothing else is in the way. It imports nothing of openbotkit, so it measures no part of it.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import sqlite3
import time
from typing import Any

import orjson
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

# (column, JSON key) in the order obk's BotOutput writes them.
COLUMNS = (
    ("id", "id"),
    ("created_at", "createdAt"),
    ("updated_at", "updatedAt"),
    ("alias", "alias"),
    ("name", "name"),
    ("description", "description"),
    ("meta", "meta"),
    ("model", "model"),
    ("backstory", "backstory"),
    ("dataset_id", "datasetId"),
    ("skillset_id", "skillsetId"),
    ("blueprint_id", "blueprintId"),
    ("privacy", "privacy"),
    ("moderation", "moderation"),
    ("visibility", "visibility"),
)
SELECT = "SELECT " + ", ".join(c for c, _ in COLUMNS) + " FROM bots"
JSON_COLUMNS = {"meta"}
BOOL_COLUMNS = {"privacy", "moderation"}
UNAUTHORIZED = Response(b'{"message":"Not authenticated"}', 401, media_type="application/json")
NOT_FOUND = Response(b'{"message":"bot not found"}', 404, media_type="application/json")


def app(db: str) -> Starlette:
    conn = sqlite3.connect(db, isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute("PRAGMA busy_timeout=30000")
    accounts: dict[str, str] = {}

    def account_of(request: Request) -> str | None:
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer":
            return None
        digest = hashlib.sha256(token.strip().encode()).hexdigest()
        account = accounts.get(digest)
        if account is None:
            row = conn.execute(
                "SELECT account_id FROM secrets WHERE token_hash = ? AND revoked_at IS NULL",
                (digest,),
            ).fetchone()
            if row is None:
                return None
            account = accounts[digest] = row[0]
        return account

    def bot(row: tuple[Any, ...]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for (column, key), value in zip(COLUMNS, row, strict=True):
            if value is None:
                continue
            if column in JSON_COLUMNS:
                value = orjson.loads(value)
            elif column in BOOL_COLUMNS:
                value = bool(value)
            out[key] = value
        return out

    async def list_bots(request: Request) -> Response:
        account = account_of(request)
        if account is None:
            return UNAUTHORIZED
        take = min(max(int(request.query_params.get("take") or 100), 1), 100)
        rows = conn.execute(
            SELECT + " WHERE account_id = ? ORDER BY created_at DESC, id DESC LIMIT ?",
            (account, take + 1),
        ).fetchall()
        items = [bot(r) for r in rows[:take]]
        cursor = items[-1]["id"] if len(rows) > take else ""
        return Response(
            orjson.dumps({"items": items, "cursor": cursor}), media_type="application/json"
        )

    async def fetch_bot(request: Request) -> Response:
        account = account_of(request)
        if account is None:
            return UNAUTHORIZED
        row = conn.execute(
            SELECT + " WHERE account_id = ? AND id = ?", (account, request.path_params["bot_id"])
        ).fetchone()
        if row is None:
            return NOT_FOUND
        return Response(orjson.dumps(bot(row)), media_type="application/json")

    async def create_bot(request: Request) -> Response:
        account = account_of(request)
        if account is None:
            return UNAUTHORIZED
        body = orjson.loads(await request.body())
        now = time.time_ns() // 1_000_000
        bot_id = f"{now:013x}{os.urandom(7).hex()}"[:26]
        meta = body.get("meta")
        conn.execute("BEGIN IMMEDIATE")
        try:
            conn.execute(
                "INSERT INTO bots (id, account_id, created_at, updated_at, name, backstory, meta,"
                " model) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    bot_id,
                    account,
                    now,
                    now,
                    body.get("name"),
                    body.get("backstory"),
                    None if meta is None else orjson.dumps(meta).decode(),
                    body.get("model"),
                ),
            )
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        return Response(orjson.dumps({"id": bot_id}), media_type="application/json")

    return Starlette(
        routes=[
            Route("/api/v1/bot/list", list_bots, methods=["GET"]),
            Route("/api/v1/bot/{bot_id}/fetch", fetch_bot, methods=["GET"]),
            Route("/api/v1/bot/create", create_bot, methods=["POST"]),
        ]
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", required=True, help="the SQLite file obk serves")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    uvicorn.run(
        app(args.db), host="127.0.0.1", port=args.port, log_level="warning", access_log=False
    )


if __name__ == "__main__":
    main()
