"""Regenerate the initial migration from store/tables.py (only while nothing has been released).

Run: .venv/bin/python scripts/regen_initial_migration.py
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import create_engine

from openbotkit.store.db import MIGRATIONS_DIR

versions = MIGRATIONS_DIR / "versions"
for old in versions.glob("0001_*.py"):
    old.unlink()
with tempfile.TemporaryDirectory() as tmp, tempfile.TemporaryDirectory() as later_dir:
    # Later revisions point at 0001; keep them out of alembic's sight while it is rewritten.
    later = [p.rename(Path(later_dir) / p.name) for p in versions.glob("*.py")]
    engine = create_engine(f"sqlite:///{Path(tmp) / 'empty.sqlite3'}")
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    with engine.connect() as conn:
        cfg.attributes["connection"] = conn
        command.revision(
            cfg, message="initial schema", autogenerate=True, rev_id="0001", head="base"
        )
    for moved in later:
        moved.rename(versions / moved.name)
for new in versions.glob("0001_*.py"):
    new.rename(versions / "0001_initial.py")
target = versions / "0001_initial.py"
ruff = Path(sys.executable).parent / "ruff"
subprocess.run([str(ruff), "format", "-q", str(target)], check=False)
print("wrote", target)
