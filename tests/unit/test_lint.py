"""The lint and type gate: `ruff check` and `mypy` over the whole tree, configured in pyproject.toml
(docs/decisions.md "Lint and type gate"), so the README's test command and CI run them."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
TREE = ("shared", "services", "tests", "bench")


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", *args], cwd=ROOT, capture_output=True, text=True, timeout=200)


def test_ruff_finds_nothing():
    result = run("ruff", "check", "--output-format", "concise", *TREE)
    assert result.returncode == 0, result.stdout + result.stderr


def test_mypy_finds_nothing():
    result = run("mypy", *TREE)
    assert result.returncode == 0, result.stdout + result.stderr
