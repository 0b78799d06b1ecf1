"""The `luigid` command is ours however the project is installed: no extra drags luigi (whose package
ships a `luigid` script of its own) into the environment, and `python -m luigid` is always ours."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import luigid

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on 3.10 only
    import tomli as tomllib

PYPROJECT = Path(__file__).resolve().parents[1] / "pyproject.toml"


def _requirement_name(requirement: str) -> str:
    match = re.match(r"[A-Za-z0-9._-]+", requirement.strip())
    assert match, requirement
    return match.group(0).lower().replace("_", "-")


def test_no_dependency_or_extra_brings_in_luigi() -> None:
    project = tomllib.loads(PYPROJECT.read_text())["project"]
    groups = {"dependencies": project["dependencies"], **project.get("optional-dependencies", {})}
    for group, requirements in groups.items():
        names = {_requirement_name(r) for r in requirements}
        assert "luigi" not in names, f"{group} would install luigi, and luigi's luigid script with it"


def test_python_m_luigid_is_ours() -> None:
    reply = subprocess.run(
        [sys.executable, "-m", "luigid", "--version"], capture_output=True, text=True, timeout=60, check=True
    )
    assert reply.stdout.strip() == f"luigid {luigid.__version__}"
