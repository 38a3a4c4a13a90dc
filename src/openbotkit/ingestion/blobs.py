"""File contents, kept apart from the database: a local directory (the default) or an
S3-compatible object store (`s3_blobs.py`), chosen by one URL (OBK_BLOB_URL, see backends).

The contract is shaped for both: reads stream (`open`), writes are atomic (a local rename, or a
single S3 PUT / completed multipart upload), and a store that can hand out its own signed URLs
(`presign_put`, `presign_get`) lets clients move bytes without passing through the API.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import socket
import tempfile
import threading
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol
from urllib.parse import quote

from openbotkit.errors import LimitsReached, Problem

READ_CHUNK = 1 << 20


@dataclass(frozen=True)
class StoredBlob:
    size: int
    sha256: str


@dataclass(frozen=True)
class SignedRequest:
    """A request a client may make on its own until the link expires."""

    url: str
    headers: dict[str, str]


class BlobReader(Protocol):
    """An open blob: read it in pieces, then close it."""

    def read(self, size: int = -1, /) -> bytes: ...

    def close(self) -> None: ...


class BlobStore(Protocol):
    """Content by key (the file id). Writes are atomic: a reader sees old or new, never half.

    Request bodies are first written to a local staging file (`staged_file()`, under `staging`)
    so a size limit holds while they stream; `put_file(..., move=True)` then takes it over.
    """

    # Where request bodies are spooled before they are stored (a local directory either way).
    staging: Path

    def staged_file(self) -> Path:
        """A new empty file in the staging area, for the caller to fill and then `put_file`."""
        ...

    def claim_staged(self, path: Path) -> bool:
        """True once for a file `staged_file` made in this process: a `path` naming it is the
        server's own staged body, never a client's choice of local file."""
        ...

    def is_staged(self, path: Path) -> bool:
        """Whether `claim_staged(path)` would be True now (it claims nothing)."""
        ...

    def release_staged(self, path: Path) -> None:
        """Delete a staged file that will not be used."""
        ...

    def clean_staging(self) -> int:
        """Remove staged files that processes which have ended left behind (at start)."""
        ...

    def put_chunks(self, key: str, chunks: Iterable[bytes], max_bytes: int) -> StoredBlob:
        """Store a stream, refusing it (LimitsReached) once it passes `max_bytes`."""
        ...

    def put_file(self, key: str, path: Path, *, move: bool) -> StoredBlob:
        """Store a local file; `move` lets the store take a staged file over."""
        ...

    def open(self, key: str) -> BlobReader | None:
        """The content for streaming reads, or None when there is none."""
        ...

    def size(self, key: str) -> int | None:
        """The content's size in bytes, or None when there is none."""
        ...

    def delete(self, key: str) -> None: ...

    def keys(self) -> Iterator[str]:
        """Every key held (for copying a whole store)."""
        ...

    def presign_put(self, key: str, size: int, ttl_s: int) -> SignedRequest | None:
        """The store's own URL to PUT exactly `size` bytes, or None if it has no such URLs
        (then the API signs its own content URL and the bytes pass through it)."""
        ...

    def presign_get(self, key: str, name: str, content_type: str, ttl_s: int) -> str | None:
        """The store's own URL to GET the content as an attachment, or None (as above)."""
        ...


def read_all(reader: BlobReader) -> bytes:
    try:
        return reader.read()
    finally:
        reader.close()


def iter_chunks(reader: BlobReader, size: int = READ_CHUNK) -> Iterator[bytes]:
    """The reader's bytes in pieces; closes it when exhausted or abandoned."""
    try:
        while chunk := reader.read(size):
            yield chunk
    finally:
        reader.close()


def attachment(name: str) -> str:
    """Content-Disposition for a download, as Starlette's FileResponse writes it."""
    quoted = quote(name)
    if quoted != name:
        return f"attachment; filename*=utf-8''{quoted}"
    return f'attachment; filename="{name}"'


def too_large(max_bytes: int) -> LimitsReached:
    return LimitsReached(
        f"file is larger than the {max_bytes}-byte limit (OBK_MAX_FILE_BYTES)",
        details=[Problem("/file", "maximum", f"at most {max_bytes} bytes")],
    )


# A staged file's name says which process made it, so a later start can tell a dead process's
# leftovers from a live one's body in flight: obk-<pid>-<host>-<random>.
_HOST = socket.gethostname().replace("/", "_")
STALE_STAGING_S = 3600.0  # a file of another machine (a shared staging folder) or of no owner


def new_staged_file(staging: Path) -> Path:
    """A new empty file (0600, as mkstemp makes it) in the staging folder (0700)."""
    staging.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(dir=staging, prefix=f"obk-{os.getpid()}-{_HOST}-")
    os.close(fd)
    return Path(name)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process: alive
        return True
    return True


def clean_staging(staging: Path, max_age_s: float = STALE_STAGING_S) -> int:
    """Remove what processes that have ended left in the staging folder (a body whose request
    died with its process); the number removed. A file made on this machine goes once its
    process has gone; any other (another machine's, sharing the folder) once it has not
    changed for `max_age_s`. Bodies of processes still running are left alone."""
    removed = 0
    try:
        entries = list(staging.iterdir())
    except FileNotFoundError:
        return 0
    now = time.time()
    for path in entries:
        pid_text, _, rest = path.name.removeprefix("obk-").partition("-")
        host = rest.rpartition("-")[0]
        try:
            if path.name.startswith("obk-") and pid_text.isdigit() and host == _HOST:
                stale = int(pid_text) != os.getpid() and not _alive(int(pid_text))
            else:
                stale = now - path.stat().st_mtime > max_age_s
            if stale and path.is_file():
                path.unlink()
                removed += 1
        except FileNotFoundError:
            continue
    return removed


def spool(staging: Path, chunks: Iterable[bytes], max_bytes: int) -> tuple[Path, StoredBlob]:
    """Write a stream to a new staged file, hashing it and enforcing the limit as it goes.
    The staged file is removed if anything fails."""
    tmp = new_staged_file(staging)
    digest, size = hashlib.sha256(), 0
    try:
        with tmp.open("wb") as out:
            for chunk in chunks:
                size += len(chunk)
                if size > max_bytes:
                    raise too_large(max_bytes)
                digest.update(chunk)
                out.write(chunk)
            out.flush()
            os.fsync(out.fileno())
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return tmp, StoredBlob(size, digest.hexdigest())


def digest_file(path: Path) -> StoredBlob:
    digest, size = hashlib.sha256(), 0
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(READ_CHUNK), b""):
            digest.update(chunk)
            size += len(chunk)
    return StoredBlob(size, digest.hexdigest())


def check_key(key: str) -> str:
    if not key or "/" in key or key.startswith("."):
        raise ValueError(f"bad blob key {key!r}")
    return key


class IssuedStaging:
    """Staged files handed out by `staged_file` and not yet taken: a `path` input naming one of
    these is this server's own staged request body, never a client's choice of local file
    (the engine lets only such a `path` through where local files are not allowed)."""

    staging: Path

    def __init__(self) -> None:
        self._issued: set[Path] = set()
        self._lock = threading.Lock()

    def staged_file(self) -> Path:
        """A new empty file in the staging area, noted as this process's own."""
        path = new_staged_file(self.staging)
        with self._lock:
            self._issued.add(path)
        return path

    def claim_staged(self, path: Path) -> bool:
        """True once for a file `staged_file` made in this process (then it is the caller's)."""
        with self._lock:
            if path in self._issued:
                self._issued.discard(path)
                return True
        return False

    def is_staged(self, path: Path) -> bool:
        with self._lock:
            return path in self._issued

    def release_staged(self, path: Path) -> None:
        with self._lock:
            self._issued.discard(path)
        path.unlink(missing_ok=True)

    def clean_staging(self) -> int:
        """Remove staged files left by processes that have ended (see `clean_staging`)."""
        return clean_staging(self.staging)


class LocalBlobStore(IssuedStaging):
    """Blobs as files under one directory, written to a temp file and renamed into place."""

    def __init__(self, root: Path) -> None:
        super().__init__()
        self.root = root
        # The same filesystem as the blobs, so a staged file can be renamed in.
        self.staging = root / ".staging"
        # Contents are the account's files: for this user only (blobs 0600, as mkstemp makes
        # them and a rename keeps them).
        root.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.staging.mkdir(mode=0o700, parents=True, exist_ok=True)

    def _target(self, key: str) -> Path:
        return self.root / key[-2:] / check_key(key)

    def put_chunks(self, key: str, chunks: Iterable[bytes], max_bytes: int) -> StoredBlob:
        tmp, info = spool(self.staging, chunks, max_bytes)
        try:
            return self._install(key, tmp, info)
        finally:
            tmp.unlink(missing_ok=True)

    def put_file(self, key: str, path: Path, *, move: bool) -> StoredBlob:
        info = digest_file(path)
        if move and path.parent == self.staging:
            return self._install(key, path, info)
        tmp = new_staged_file(self.staging)
        try:
            shutil.copyfile(path, tmp)
            return self._install(key, tmp, info)
        finally:
            tmp.unlink(missing_ok=True)

    def _install(self, key: str, tmp: Path, info: StoredBlob) -> StoredBlob:
        target = self._target(key)
        target.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        os.replace(tmp, target)
        return info

    def open(self, key: str) -> BlobReader | None:
        try:
            return self._target(key).open("rb")
        except FileNotFoundError:
            return None

    def size(self, key: str) -> int | None:
        try:
            return self._target(key).stat().st_size
        except FileNotFoundError:
            return None

    def delete(self, key: str) -> None:
        self._target(key).unlink(missing_ok=True)

    def keys(self) -> Iterator[str]:
        for shard in sorted(self.root.iterdir()):
            if shard.is_dir() and not shard.name.startswith("."):
                yield from sorted(p.name for p in shard.iterdir() if p.is_file())

    def presign_put(self, key: str, size: int, ttl_s: int) -> SignedRequest | None:
        return None

    def presign_get(self, key: str, name: str, content_type: str, ttl_s: int) -> str | None:
        return None
