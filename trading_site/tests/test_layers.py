"""The layering contracts of pyproject.toml ([tool.importlinter]) hold, and they do catch a forbidden import.

The second test proves the contract, not the code: on a copy of the apps it adds one import that
breaks the layering and expects `lint-imports` to fail naming it."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
APPS = ("workflows", "brokers", "strategies", "trading_site")
LINT = Path(sys.executable).with_name("lint-imports")


def _copy(tmp_path: Path) -> Path:
    for app in APPS:
        shutil.copytree(ROOT / app, tmp_path / app, ignore=shutil.ignore_patterns("*.pyc", "__pycache__", "data"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    return tmp_path


def _lint(where: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(LINT), "--no-cache"],
        cwd=where,
        capture_output=True,
        text=True,
        env={"PYTHONPATH": str(where)},
        timeout=120,
    )


def test_the_contracts_hold():
    result = _lint(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize(
    ("module", "line", "expected"),
    [
        ("workflows/engine.py", "from strategies.models import Strategy", "workflows.engine -> strategies.models"),
        ("workflows/graph.py", "import brokers.models", "workflows.graph -> brokers.models"),
        ("brokers/orders/services.py", "from strategies.risk import rules", "brokers.orders.services -> strategies"),
        ("strategies/services.py", "from trading_site import urls", "strategies.services -> trading_site.urls"),
    ],
)
def test_a_forbidden_import_breaks_a_contract(tmp_path, module, line, expected):
    copy = _copy(tmp_path)
    path = copy / module
    path.write_text(path.read_text() + f"\n\ndef _forbidden():\n    {line}\n")
    result = _lint(copy)
    assert result.returncode == 1, result.stdout
    assert "BROKEN" in result.stdout and expected in result.stdout, result.stdout
