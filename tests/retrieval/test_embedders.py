"""Both local embedder backends: the default int8 ONNX one stays close to PyTorch's fp32."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from openbotkit.retrieval.embedders import Embedder, LocalEmbedder
from openbotkit.retrieval.onnx_embedder import EXPORT_NAME, OnnxEmbedder

TEXTS = [
    "The Zephyr-9 warehouse robot has a maximum payload of 42 kilograms.",
    "What is the payload of the robot?",
    "Paris is the capital of France.",
    "x",
]


def test_onnx_int8_agrees_with_pytorch_fp32(local_embedder: Embedder) -> None:
    onnx = local_embedder.embed(TEXTS)
    torch = LocalEmbedder().embed(TEXTS)
    assert onnx.shape == torch.shape == (4, 384)
    assert np.allclose(np.linalg.norm(onnx, axis=1), 1.0, atol=1e-4)
    cosine = (onnx * torch).sum(axis=1)
    assert float(cosine.mean()) > 0.985 and float(cosine.min()) > 0.97  # "x" is the worst case


def test_a_vector_does_not_depend_on_its_batch(local_embedder: Embedder) -> None:
    together = local_embedder.embed(TEXTS)
    alone = np.vstack([local_embedder.embed([t]) for t in TEXTS])
    assert np.allclose(together, alone, atol=1e-6)


def test_token_counting_and_splitting(local_embedder: Embedder) -> None:
    text = "word " * 300
    assert local_embedder.count_tokens(text) == 300
    pieces = local_embedder.split_tokens(text, 100)
    assert len(pieces) == 3 and all(local_embedder.count_tokens(p) <= 100 for p in pieces)


def test_the_saved_optimized_graph_gives_the_same_vectors(
    local_embedder: Embedder, cache_dir: Path
) -> None:
    """The embedder loads the graph onnxruntime optimized once, with optimization off: the
    vectors are those of the exported model optimized at load (onnxruntime's default)."""
    import onnxruntime as ort

    assert isinstance(local_embedder, OnnxEmbedder)
    assert list(cache_dir.glob(f"*.ort-{ort.__version__}.opt.onnx"))
    default = OnnxEmbedder(cache_dir)
    default.session = ort.InferenceSession(
        str(cache_dir / EXPORT_NAME), providers=["CPUExecutionProvider"]
    )
    assert np.array_equal(local_embedder.embed(TEXTS), default.embed(TEXTS))
