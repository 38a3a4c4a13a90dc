"""File contents, kept apart from the database: a local directory by default (see backends)."""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from openbotkit.errors import LimitsReached


@dataclass(frozen=True)
class StoredBlob:
    size: int
    sha256: str


class BlobStore(Protocol):
    """Content by key (the file id). Writes are atomic: a reader sees old or new, never half.

    Request bodies are first written to a local staging file (`staged_file()`, under `staging`)
    so a size limit holds while they stream; `put_file(..., move=True)` then takes it over.
    """

    staging: Path

    def staged_file(self) -> Path: ...

    def claim_staged(self, path: Path) -> bool:
        """True once for a file `staged_file` made in this process: a `path` naming it is the
        server's own staged body, never a client's choice of local file."""
        ...

    def is_staged(self, path: Path) -> bool:
        """Whether `claim_staged(path)` would be True now (it claims nothing)."""
        ...

    def release_staged(self, path: Path) -> None: ...

    def put_chunks(self, key: str, chunks: Iterable[bytes], max_bytes: int) -> StoredBlob: ...

    def put_file(self, key: str, path: Path, *, move: bool) -> StoredBlob: ...

    def path(self, key: str) -> Path | None: ...

    def delete(self, key: str) -> None: ...


class LocalBlobStore:
    """Blobs as files under one directory, written to a temp file and renamed into place."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.staging = root / ".staging"
        self.staging.mkdir(parents=True, exist_ok=True)
        # Staged files this process made and has not handed over yet: a `path` naming one of
        # these is this server's own staged body, never a client's choice of local file.
        self._issued: set[Path] = set()
        self._lock = threading.Lock()

    def _target(self, key: str) -> Path:
        if not key or "/" in key or key.startswith("."):
            raise ValueError(f"bad blob key {key!r}")
        return self.root / key[-2:] / key

    def staged_file(self) -> Path:
        """A new empty file in the staging area (same filesystem, so it can be renamed in)."""
        fd, name = tempfile.mkstemp(dir=self.staging)
        os.close(fd)
        path = Path(name)
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
        """Whether `claim_staged(path)` would be True now (it claims nothing)."""
        with self._lock:
            return path in self._issued

    def release_staged(self, path: Path) -> None:
        """Delete a staged file that will not be used."""
        with self._lock:
            self._issued.discard(path)
        path.unlink(missing_ok=True)

    def put_chunks(self, key: str, chunks: Iterable[bytes], max_bytes: int) -> StoredBlob:
        tmp = self.staged_file()
        digest, size = hashlib.sha256(), 0
        try:
            with tmp.open("wb") as out:
                for chunk in chunks:
                    size += len(chunk)
                    if size > max_bytes:
                        raise LimitsReached(
                            f"file is larger than the {max_bytes}-byte limit (OBK_MAX_FILE_BYTES)"
                        )
                    digest.update(chunk)
                    out.write(chunk)
                out.flush()
                os.fsync(out.fileno())
            return self._install(key, tmp, StoredBlob(size, digest.hexdigest()))
        finally:
            self.release_staged(tmp)

    def put_file(self, key: str, path: Path, *, move: bool) -> StoredBlob:
        digest, size = hashlib.sha256(), 0
        with path.open("rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                digest.update(chunk)
                size += len(chunk)
        info = StoredBlob(size, digest.hexdigest())
        if move and path.parent == self.staging:
            return self._install(key, path, info)
        tmp = self.staged_file()
        try:
            shutil.copyfile(path, tmp)
            return self._install(key, tmp, info)
        finally:
            self.release_staged(tmp)

    def _install(self, key: str, tmp: Path, info: StoredBlob) -> StoredBlob:
        target = self._target(key)
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(tmp, target)
        with self._lock:
            self._issued.discard(tmp)
        return info

    def path(self, key: str) -> Path | None:
        target = self._target(key)
        return target if target.exists() else None

    def delete(self, key: str) -> None:
        self._target(key).unlink(missing_ok=True)
