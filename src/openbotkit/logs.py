"""Logging for the long-running commands (`obk serve`, `obk worker`): one stderr handler.

Text lines for people, or JSON lines (`OBK_LOG_FORMAT=json`) for log collectors; the level from
`OBK_LOG_LEVEL` (or `--log-level`). uvicorn's own loggers go through the same handler, and its
access log is replaced by the server's (server/access.py), which names the time taken.
"""

from __future__ import annotations

import datetime as dt
import logging
import sys
from typing import Any

import orjson

# LogRecord attributes every record has: what is left over was passed as `extra`.
_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime"}


def _timestamp(record: logging.LogRecord) -> str:
    moment = dt.datetime.fromtimestamp(record.created, tz=dt.UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, and any `extra` fields."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": _timestamp(record),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in _STANDARD and not key.startswith("_"):
                line[key] = value
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return orjson.dumps(line, default=str).decode()


class TextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        text = f"{_timestamp(record)} {record.levelname:<7} {record.name}: {record.getMessage()}"
        if record.exc_info:
            text += "\n" + self.formatException(record.exc_info)
        return text


def configure_logging(level: str = "info", fmt: str = "text") -> None:
    """Send every log record at `level` or above to stderr, as text or JSON lines.

    Replaces the root logger's handlers, so calling it twice (a parent and its worker
    processes) never doubles lines; uvicorn's loggers propagate to it.
    """
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for name in ("uvicorn", "uvicorn.error"):
        logger = logging.getLogger(name)
        logger.handlers[:] = []
        logger.propagate = True
        logger.setLevel(logging.NOTSET)
    # The server's access log (server/access.py) replaces uvicorn's, in every process.
    uvicorn_access = logging.getLogger("uvicorn.access")
    uvicorn_access.handlers[:] = []
    uvicorn_access.propagate = False
    # Migrations announce themselves at every start; only worth seeing when debugging.
    logging.getLogger("alembic").setLevel("DEBUG" if level.lower() == "debug" else "WARNING")
