"""Write requirements.lock from pyproject.toml, or check that the two agree.

    .venv/bin/python scripts/lock.py           # re-resolve: every package pinned, with hashes
    .venv/bin/python scripts/lock.py --check   # exit 1 when pyproject.toml and the lock disagree

Why pip-tools and not uv: PyTorch's CPU build is not on PyPI (a plain `torch` from PyPI is the
CUDA build, gigabytes), and pip finds the CPU wheel where the machine's pip configuration puts
it (a local wheel folder here); uv does not read pip's configuration. `pip install
--require-hashes --no-deps -r requirements.lock` then installs exactly the locked files, and
refuses any byte that differs.

The check runs without the network: every requirement of the project (its dependencies and the
`dev` extra, with markers) must be pinned in the lock at a version its specifier admits. That
the lock is complete (every dependency of a dependency pinned) is checked after installing it,
by `pip check` in the Makefile. pip-compile adds the project itself (`openbotkit @ file://...`,
for the `dev` extra's self-reference): it is dropped, as the project installs from its folder.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tomllib
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parent.parent
LOCK = ROOT / "requirements.lock"
PROJECT = "openbotkit"
PIN = re.compile(r"^([A-Za-z0-9_.\-]+)==(\S+)")
VIA = re.compile(r"^    #   (\S+)|^    # via (\S+)")


def compile_lock() -> None:
    subprocess.run(
        [
            sys.executable,
            "-m",
            "piptools",
            "compile",
            "--quiet",
            "--generate-hashes",
            "--extra=dev",
            "--strip-extras",
            "--no-emit-index-url",
            "--no-emit-find-links",
            "--allow-unsafe",
            "--output-file",
            str(LOCK),
            str(ROOT / "pyproject.toml"),
        ],
        check=True,
        cwd=ROOT,
    )
    LOCK.write_text(drop_project(LOCK.read_text()))


def drop_project(text: str) -> str:
    """The lock without pip-compile's entry for the project itself (and its warning)."""
    out: list[str] = []
    skipping = False
    for line in text.splitlines():
        if line.startswith("# WARNING: pip install will require") or line.startswith(
            "# Consider using a hashable URL"
        ):
            continue
        if line.startswith(f"{PROJECT} @ "):
            skipping = True
            continue
        if skipping and line.startswith("    "):
            continue
        skipping = False
        out.append(line)
    return "\n".join(out) + "\n"


def pins(text: str) -> dict[str, str]:
    found: dict[str, str] = {}
    for line in text.splitlines():
        match = PIN.match(line)
        if match:
            found[canonicalize_name(match.group(1))] = match.group(2)
    return found


def project_requirements() -> list[Requirement]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    extras = project.get("optional-dependencies", {})
    wanted = [*project["dependencies"], *extras.get("dev", [])]
    out: list[Requirement] = []
    for text in wanted:
        req = Requirement(text)
        if canonicalize_name(req.name) == PROJECT:  # openbotkit[postgres,s3]
            out += [Requirement(r) for extra in req.extras for r in extras[extra]]
        else:
            out.append(req)
    return out


def problems(lock_text: str) -> list[str]:
    """What makes the lock disagree with pyproject.toml (empty: they agree)."""
    pinned = pins(lock_text)
    found = []
    for req in project_requirements():
        if req.marker is not None and not req.marker.evaluate({"extra": "dev"}):
            continue
        name = canonicalize_name(req.name)
        version = pinned.get(name)
        if version is None:
            found.append(f"{req} is not in the lock")
        elif not req.specifier.contains(version, prereleases=True):
            found.append(f"{req}: the lock pins {version}")
    if f"{PROJECT} @ " in lock_text:
        found.append("the lock names the project itself: run scripts/lock.py")
    return found


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only check; change nothing")
    args = parser.parse_args()
    if not args.check:
        compile_lock()
    found = problems(LOCK.read_text())
    for problem in found:
        print(f"requirements.lock: {problem}", file=sys.stderr)
    if found:
        print(
            "requirements.lock disagrees with pyproject.toml: run scripts/lock.py", file=sys.stderr
        )
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
