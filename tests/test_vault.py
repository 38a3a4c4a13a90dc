"""The key that encrypts ability secrets: made once (0600), shared, or given by OBK_SECRET_KEY."""

from __future__ import annotations

import stat
import threading
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from openbotkit.errors import InternalError, InvalidInput
from openbotkit.settings import Settings
from openbotkit.vault import KEY_FILE, Vault, load_or_create_key


def test_key_file_is_made_on_first_use_private_and_reused(tmp_path: Path) -> None:
    home = tmp_path / "home"
    vault = Vault(home)
    assert not (home / KEY_FILE).exists()  # nothing until a value is stored
    blob = vault.encrypt("v1")
    mode = stat.S_IMODE((home / KEY_FILE).stat().st_mode)
    assert mode == 0o600
    assert Vault(home).decrypt(blob, secret_id="s") == "v1"  # another process, same file
    assert b"v1" not in blob


def test_processes_racing_to_make_the_key_agree(tmp_path: Path) -> None:
    path = tmp_path / KEY_FILE
    keys: list[bytes] = []
    threads = [
        threading.Thread(target=lambda: keys.append(load_or_create_key(path))) for _ in range(8)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(set(keys)) == 1 and keys[0] == path.read_bytes().strip()
    assert sorted(p.name for p in tmp_path.iterdir()) == [KEY_FILE]  # no temporary file left


def test_setting_gives_the_key_and_no_file_is_made(tmp_path: Path) -> None:
    key = Fernet.generate_key().decode()
    settings = Settings.from_env({"OBK_HOME": str(tmp_path), "OBK_SECRET_KEY": key})
    assert settings.secret_key is not None and key not in repr(settings)
    vault = Vault(tmp_path, settings.secret_key.get_secret_value())
    blob = vault.encrypt("value")
    assert Fernet(key.encode()).decrypt(blob) == b"value"
    assert not (tmp_path / KEY_FILE).exists()


def test_a_malformed_key_is_refused_at_start_without_repeating_it(tmp_path: Path) -> None:
    bad = "not-a-fernet-key-but-a-password"
    with pytest.raises(InvalidInput) as err:
        Settings.from_env({"OBK_HOME": str(tmp_path), "OBK_SECRET_KEY": bad})
    assert err.value.details[0].pointer == "/OBK_SECRET_KEY"
    assert bad not in str(err.value) and "Fernet" in str(err.value)


def test_a_value_stored_under_another_key_says_which_key_to_set(tmp_path: Path) -> None:
    blob = Vault(tmp_path / "a").encrypt("v")
    with pytest.raises(InternalError, match="OBK_SECRET_KEY") as err:
        Vault(tmp_path / "b").decrypt(blob, secret_id="sec_1")
    assert "sec_1" in str(err.value)
