"""Settings: read once from the environment by a surface, then passed down explicitly."""

from __future__ import annotations

import base64
import binascii
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Literal
from urllib.parse import urlsplit

import platformdirs
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator

from openbotkit.errors import InvalidInput, Problem

# Set by `obk serve --workers N` for its API processes, not by users (server/balance.py).
SERVE_PEERS_ENV = "OBK_SERVE_PEERS"

# Environment variable -> Settings field. OBK_HOME and OBK_ALLOW_PRIVATE_URLS are read apart
# (a default directory; a boolean). tests/test_docs.py checks the README or a docs/ page
# documents each one.
ENV_VARS: dict[str, str] = {
    "OBK_DATABASE_URL": "database_url",
    "OBK_BLOB_URL": "blob_url",
    "CHATBOTKIT_BASE_URL": "base_url",
    "CHATBOTKIT_API_SECRET": "api_secret",
    "OBK_EMBEDDER": "embedder",
    "OBK_OPENAI_BASE_URL": "openai_base_url",
    "OBK_OPENAI_API_KEY": "openai_api_key",
    "OBK_OPENAI_EMBEDDING_MODEL": "openai_embedding_model",
    "OBK_MAX_FILE_BYTES": "max_file_bytes",
    "OBK_MAX_PARSED_CHARS": "max_parsed_chars",
    "OBK_MAX_PARSED_SECTIONS": "max_parsed_sections",
    "OBK_MAX_UNPACKED_BYTES": "max_unpacked_bytes",
    "OBK_FETCH_TIMEOUT_S": "fetch_timeout_s",
    "OBK_FETCH_ALLOW_HOSTS": "fetch_allow_hosts",
    "OBK_FETCHES_PER_ACCOUNT": "fetches_per_account",
    "OBK_SYNC_MIN_INTERVAL_S": "sync_min_interval_s",
    "OBK_JOB_LEASE_S": "job_lease_s",
    "OBK_CACHE_DIR": "cache_dir",
    "OBK_MODELS_FILE": "models_file",
    "OBK_DEFAULT_MODEL": "default_model",
    "OBK_CORS_ORIGINS": "cors_origins",
    "OBK_LOG_LEVEL": "log_level",
    "OBK_LOG_FORMAT": "log_format",
    "OBK_RETENTION_DAYS": "retention_days",
    "OBK_SERVER_THREADS": "server_threads",
    "OBK_CONSOLE_SESSION_S": "console_session_s",
    "OBK_SECRET_KEY": "secret_key",
    "OBK_PUBLIC_URL": "public_url",
    "OBK_SLACK_API_URL": "slack_api_url",
    "OBK_DISCORD_API_URL": "discord_api_url",
    "OBK_WHATSAPP_API_URL": "whatsapp_api_url",
    "OBK_EMAIL_LISTEN": "email_listen",
    "OBK_TELEGRAM_API_URL": "telegram_api_url",
    SERVE_PEERS_ENV: "serve_peers",
    # Read before settings by the CLI's warm start (cli/warm.py); declared here to be validated.
    "OBK_CLI_WARM_SECONDS": "cli_warm_seconds",
    # An S3-compatible store is configured the way the AWS tools are.
    "AWS_ENDPOINT_URL": "aws_endpoint_url",
    "AWS_ACCESS_KEY_ID": "aws_access_key_id",
    "AWS_SECRET_ACCESS_KEY": "aws_secret_access_key",
    "AWS_REGION": "aws_region",
}


def allow_hosts(value: str) -> frozenset[tuple[str, int | None]]:
    """`host[:port],...` (an IPv6 address in brackets) as lower-case (host, port) pairs."""
    found: set[tuple[str, int | None]] = set()
    for entry in (e.strip() for e in value.split(",")):
        if not entry:
            continue
        parts = urlsplit("//" + entry)
        try:
            host, port = parts.hostname, parts.port
        except ValueError:
            host, port = None, None
        if not host or parts.path or parts.query or parts.fragment or "@" in entry:
            raise ValueError(f"{entry!r} is not host[:port]")
        found.add((host.lower(), port))
    return frozenset(found)


class Settings(BaseModel):
    """Everything configurable. Nothing below the surfaces reads `os.environ`."""

    model_config = ConfigDict(frozen=True)

    home: Path
    database_url: str | None = None
    # Where file contents live: a URL whose scheme picks the blob store (see backends).
    blob_url: str | None = None
    # Derived files shared by every OBK_HOME on the machine (the exported ONNX embedder).
    cache_dir: Path | None = None
    # The HTTP backend of the connector (spec/actions.md "Backends").
    base_url: str | None = None
    api_secret: str | None = None
    # Retrieval
    embedder: str = "local"
    openai_base_url: str | None = None
    openai_api_key: str | None = None
    openai_embedding_model: str = "text-embedding-3-small"
    # Files
    max_file_bytes: int = 25 * 1024 * 1024
    # What one file may become while it is parsed (ingestion/parsers/base.py): characters of
    # text, sections, and bytes unpacked from an archive (DOCX).
    max_parsed_chars: Annotated[int, Field(ge=1)] = 32 * 1024 * 1024
    max_parsed_sections: Annotated[int, Field(ge=1)] = 100_000
    max_unpacked_bytes: Annotated[int, Field(ge=1)] = 64 * 1024 * 1024
    allow_private_urls: bool = False
    # Outbound fetches (ingestion/fetch.py): the whole fetch's deadline, the hosts let past the
    # public-address rule (`host[:port]`, comma-separated), and how many of one account's
    # fetches a server process runs at once.
    fetch_timeout_s: Annotated[float, Field(gt=0)] = 60.0
    fetch_allow_hosts: str = ""
    fetches_per_account: Annotated[int, Field(ge=1)] = 2
    # Host name -> addresses, answered before DNS for URL uploads (like curl --resolve); the
    # answers are checked like any other. Set by code (tests, embedders), not the environment.
    resolve_hosts: dict[str, tuple[str, ...]] = {}
    sync_min_interval_s: float = 120.0
    job_lease_s: float = 60.0
    # An S3 blob store (OBK_BLOB_URL=s3://BUCKET/PREFIX); unset ones fall back to boto3's chain.
    aws_endpoint_url: str | None = None
    aws_access_key_id: str | None = None
    aws_secret_access_key: str | None = None
    aws_region: str | None = None
    # Completion
    models_file: Path | None = None
    default_model: str = "qwen2.5-1.5b"
    # Server: browser origins allowed by CORS (comma-separated, or *), logs, retention.
    cors_origins: str = ""
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    log_format: Literal["text", "json"] = "text"
    retention_days: Annotated[float, Field(ge=0)] = 30.0
    # Threads per server process that run reads, and as many that run writes; the process
    # works on that many requests at once (server/lanes.py). Unset: 2 on SQLite, 3 on
    # PostgreSQL.
    server_threads: Annotated[int, Field(ge=1)] | None = None
    # Seconds a console session (started from an `obk serve --open` link) lasts.
    console_session_s: Annotated[float, Field(gt=0)] = 43_200.0
    # The key that encrypts ability secrets' values (openbotkit/vault.py): a Fernet key. Unset:
    # one kept in OBK_HOME/secret.key, made on first use. Every process sharing a database must
    # use the same key. SecretStr: never shown by a repr or a log line.
    secret_key: SecretStr | None = None
    # Integrations: the address chat channels reach this server at (webhook and event URLs),
    # and the Slack Web API base (a test or a proxy points it elsewhere).
    public_url: str | None = None
    slack_api_url: str = "https://slack.com/api"
    # The Discord REST API and Meta's Graph API (WhatsApp Cloud API) bases, likewise.
    discord_api_url: str = "https://discord.com/api/v10"
    whatsapp_api_url: str = "https://graph.facebook.com/v21.0"
    # Where `obk serve` listens for the email integrations' inbound mail (SMTP, `host:port`);
    # unset: no listener (channels/email.py says why a listener and not IMAP polling).
    email_listen: str | None = None
    # The Telegram Bot API base (`{base}/bot{token}/{method}`).
    telegram_api_url: str = "https://api.telegram.org"
    # The folder the API processes of one `obk serve --workers N` share (server/balance.py).
    serve_peers: Path | None = None
    # How long the connector CLI's warm process outlives its last call; 0: no warm process. At
    # most a day (cli/warm.py's MAX_SECONDS, which cannot import this module): a larger value is
    # an error, not clamped, since it is most likely a unit slip.
    cli_warm_seconds: Annotated[float, Field(ge=0, le=86_400)] = 600.0

    @property
    def cors_origin_list(self) -> list[str]:
        return [o.strip().rstrip("/") for o in self.cors_origins.split(",") if o.strip()]

    @property
    def fetch_allow_list(self) -> frozenset[tuple[str, int | None]]:
        """OBK_FETCH_ALLOW_HOSTS as (host, port) pairs; port None: any port of that host."""
        return allow_hosts(self.fetch_allow_hosts)

    @field_validator("fetch_allow_hosts")
    @classmethod
    def _allow_hosts(cls, value: str) -> str:
        allow_hosts(value)  # refused now, with the entry named, rather than at the first fetch
        return value

    @field_validator("email_listen")
    @classmethod
    def _email_listen(cls, value: str | None) -> str | None:
        if value:
            listen_address(value)
        return value or None

    @property
    def email_listen_address(self) -> tuple[str, int] | None:
        """OBK_EMAIL_LISTEN as (host, port), or None when no listener is wanted."""
        return listen_address(self.email_listen) if self.email_listen else None

    @field_validator("log_level", "log_format", mode="before")
    @classmethod
    def _lower(cls, value: object) -> object:
        return value.lower() if isinstance(value, str) else value

    @field_validator("secret_key")
    @classmethod
    def _fernet_key(cls, value: SecretStr | None) -> SecretStr | None:
        """A Fernet key is 32 bytes in URL-safe base64; checked here so a bad one stops the
        process at start, with a message that never repeats the value."""
        if value is not None:
            try:
                raw = base64.urlsafe_b64decode(value.get_secret_value().strip().encode())
            except (ValueError, binascii.Error):
                raw = b""
            if len(raw) != 32:
                raise ValueError(
                    "must be a Fernet key: 32 bytes in URL-safe base64 (44 characters); make"
                    " one with python -c 'from cryptography.fernet import Fernet;"
                    " print(Fernet.generate_key().decode())'"
                )
        return value

    @property
    def resolved_database_url(self) -> str:
        return self.database_url or f"sqlite:///{self.home / 'openbotkit.sqlite3'}"

    @property
    def resolved_cache_dir(self) -> Path:
        return self.cache_dir or Path(platformdirs.user_cache_dir("openbotkit"))

    @property
    def resolved_blob_url(self) -> str:
        return self.blob_url or (self.home / "blobs").absolute().as_uri()

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """The one reader of OBK_* (and CHATBOTKIT_* for the connector's HTTP backend)."""
        env = os.environ if env is None else env
        home = Path(env.get("OBK_HOME") or platformdirs.user_data_dir("openbotkit"))
        values: dict[str, object] = {"home": home}
        for key, field in ENV_VARS.items():
            if env.get(key):
                values[field] = env[key]
        if env.get("OBK_ALLOW_PRIVATE_URLS", "").lower() in ("1", "true", "yes"):
            values["allow_private_urls"] = True
        try:
            return cls.model_validate(values)
        except ValidationError as exc:
            # Name the variable the user set, not the field it feeds.
            variables = {field: key for key, field in ENV_VARS.items()}
            problems = [
                Problem(
                    "/" + variables.get(str(err["loc"][0]), str(err["loc"][0])),
                    err["type"],
                    err["msg"],
                )
                for err in exc.errors(include_url=False)
            ]
            summary = "; ".join(f"{p.pointer[1:]}: {p.message}" for p in problems)
            raise InvalidInput(f"bad setting: {summary}", details=problems) from None


def listen_address(value: str) -> tuple[str, int]:
    """A `host:port` to listen on (an IPv6 host in brackets); ValueError says what is wrong."""
    host, sep, port = value.strip().rpartition(":")
    if not sep or not port.isdigit() or int(port) > 65535:
        raise ValueError("must be host:port, such as 0.0.0.0:25 or 127.0.0.1:2525")
    return host.strip("[]"), int(port)
