"""Encryption at rest for the values of ability secrets (ChatBotKit's `/secret`).

A value is encrypted with Fernet (AES-128-CBC with an HMAC-SHA256, from `cryptography`) under
one key per installation: `OBK_SECRET_KEY` when set, otherwise a key kept in
`OBK_HOME/secret.key`, created with mode 0600 the first time a value is stored. Every process
that shares a database must share the key: several `obk serve` processes on one machine with
one `OBK_HOME` share the file; processes on several machines (PostgreSQL) need `OBK_SECRET_KEY`.

Only `encrypt` runs in this release's actions (no surface reads a value back); `decrypt` is for
the code that uses a secret to call a service for an ability.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken

from openbotkit.errors import InternalError, InvalidInput, Problem

KEY_FILE = "secret.key"


def check_key(text: str) -> None:
    """Raise InvalidInput unless `text` is a Fernet key (32 bytes, URL-safe base64)."""
    try:
        Fernet(text.strip().encode())
    except (ValueError, TypeError):
        raise InvalidInput(
            "OBK_SECRET_KEY is not a Fernet key (32 bytes in URL-safe base64, 44 characters);"
            " make one with: python -c 'from cryptography.fernet import Fernet;"
            " print(Fernet.generate_key().decode())'",
            details=[Problem("/OBK_SECRET_KEY", "format", "a Fernet key")],
        ) from None


class Vault:
    """Encrypts and decrypts secret values with the installation's key, loaded on first use."""

    def __init__(self, home: Path, key: str | None = None) -> None:
        self._home = home
        self._given = key
        self._fernet: Fernet | None = None
        self._lock = threading.Lock()

    def _cipher(self) -> Fernet:
        with self._lock:
            if self._fernet is None:
                if self._given is not None:
                    check_key(self._given)
                    self._fernet = Fernet(self._given.strip().encode())
                else:
                    self._fernet = Fernet(load_or_create_key(self._home / KEY_FILE))
            return self._fernet

    def encrypt(self, value: str) -> bytes:
        return self._cipher().encrypt(value.encode())

    def decrypt(self, blob: bytes, *, secret_id: str) -> str:
        """The value; a value stored under another key is an error saying which key to set."""
        try:
            return self._cipher().decrypt(blob).decode()
        except InvalidToken:
            raise InternalError(
                f"secret {secret_id} was encrypted with another key than this installation's:"
                " set OBK_SECRET_KEY (or OBK_HOME/secret.key) to the key it was stored with"
            ) from None


def load_or_create_key(path: Path) -> bytes:
    """The key in `path`, made (mode 0600) if there is none yet.

    The new key is written whole to a private temporary file and linked into place, so a
    process starting at the same moment either finds no file or a complete one, and two
    processes racing end up with the same key (the loser of the link reads the winner's)."""
    try:
        return path.read_bytes().strip()
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(Fernet.generate_key())
            out.flush()
            os.fsync(out.fileno())
        try:
            os.link(tmp, path)
        except FileExistsError:
            pass
    finally:
        tmp.unlink(missing_ok=True)
    return path.read_bytes().strip()
