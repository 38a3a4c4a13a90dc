"""The bundled models: found in their packages, assembled, checked by sha256, and loadable."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from openbotkit.errors import ProviderError
from openbotkit.models.bundled import BUNDLED, BundledModel, ModelCache
from openbotkit.models.llamacpp import LlamaCppProvider
from openbotkit.models.providers import ChatMessage, Finished, GenerationOptions, Token


@pytest.mark.slow
@pytest.mark.parametrize("model", BUNDLED, ids=lambda m: m.name)
def test_each_bundled_model_loads_from_its_packages_and_generates(
    model: BundledModel, cache_dir: Path
) -> None:
    provider = LlamaCppProvider.bundled(model, ModelCache(cache_dir / "models"))
    try:
        assert provider.path.stat().st_size == model.size
        events = list(
            provider.stream(
                [ChatMessage("user", "Reply with the word hello.")],
                GenerationOptions(max_tokens=6, temperature=0),
            )
        )
        assert any(isinstance(e, Token) for e in events) and isinstance(events[-1], Finished)
    finally:
        provider.close()


def _parts_package(root: Path, name: str, parts: list[bytes]) -> tuple[tuple[str, str], ...]:
    """An installed-looking package holding `parts` as data files, like the model packages."""
    package = root / name
    (package / "data").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    for i, data in enumerate(parts, 1):
        (package / "data" / f"part{i:02d}.bin").write_bytes(data)
    return tuple((name, f"data/part{i:02d}.bin") for i in range(1, len(parts) + 1))


def _model(parts: tuple[tuple[str, str], ...], whole: bytes) -> BundledModel:
    return BundledModel(
        name="tiny",
        aliases=(),
        file_name="tiny.gguf",
        sha256=hashlib.sha256(whole).hexdigest(),
        size=len(whole),
        parts=parts,
        context_window=512,
        generation_threads=1,
        description="test parts",
    )


def test_parts_are_assembled_once_in_order_and_checked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    parts = _parts_package(tmp_path / "site", "obk_test_parts_a", [b"first-", b"second"])
    model = _model(parts, b"first-second")
    cache = ModelCache(tmp_path / "cache")
    path = cache.path(model)
    assert path.read_bytes() == b"first-second"
    assert cache.path(model) == path  # checked once, then remembered
    assert not list((tmp_path / "cache").glob("*.partial"))


def test_a_damaged_part_is_refused_and_nothing_is_left_behind(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    parts = _parts_package(tmp_path / "site", "obk_test_parts_b", [b"first-", b"SECOND"])
    model = _model(parts, b"first-second")
    with pytest.raises(ProviderError, match="damaged") as err:
        ModelCache(tmp_path / "cache").path(model)
    assert model.sha256 in str(err.value)
    assert not (tmp_path / "cache" / "tiny.gguf").exists()
    assert not list((tmp_path / "cache").glob("*.partial"))


def test_a_file_changed_after_its_check_is_checked_again_and_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    parts = _parts_package(tmp_path / "site", "obk_test_parts_c", [b"one-piece"])
    model = _model(parts, b"one-piece")
    cache = ModelCache(tmp_path / "cache")
    path = cache.path(model)  # a single part is used in place
    assert path == tmp_path / "site" / "obk_test_parts_c" / "data" / "part01.bin"
    path.write_bytes(b"one-piecE")
    with pytest.raises(ProviderError, match="damaged"):
        cache.path(model)


def test_a_missing_part_package_names_the_package_to_install(tmp_path: Path) -> None:
    model = _model((("obk_no_such_package", "data/part01.bin"),), b"x")
    with pytest.raises(ProviderError, match="pip install obk-no-such-package"):
        ModelCache(tmp_path / "cache").path(model)
