"""Repository rules that CI relies on."""

from __future__ import annotations

import subprocess
import sys

from conftest import REPO


def test_ci_runs_exactly_the_test_command_of_the_readme():
    readme = (REPO / "README.md").read_text().splitlines()
    marker = readme.index("# 2. run the tests (what CI runs)")
    command = readme[marker + 1].strip()
    assert command.endswith("pytest -q")
    ci = [line.strip() for line in (REPO / ".ci" / "run").read_text().splitlines()]
    assert command in ci


def test_readme_starts_with_the_install_and_render_command():
    readme = (REPO / "README.md").read_text()
    first_block = readme.split("```bash", 1)[1].split("```", 1)[0]
    assert "pip install ." in first_block and "fancam render" in first_block


def test_the_package_type_checks():
    # mypy settings live in pyproject.toml ([tool.mypy]: src/fancam, numpy's stubs).
    done = subprocess.run([sys.executable, "-m", "mypy"], cwd=REPO, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout[-3000:]


def test_ruff_is_clean():
    done = subprocess.run([sys.executable, "-m", "ruff", "check", "src", "tests", "benchmarks"],
                          cwd=REPO, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout[-3000:]
