"""Shared fixtures: the tiny labeled fixture, its gazetteer, and a model trained on it once."""

from pathlib import Path

import pandas as pd
import pytest

from geostance.cli import main
from geostance.mentions import Gazetteer
from geostance.outputs import LOCK_PREFIX

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "tests" / "fixtures"


@pytest.fixture(scope="session")
def gazetteer() -> Gazetteer:
    return Gazetteer.from_csv(FIXTURES / "countries.csv")


@pytest.fixture(scope="session")
def labeled() -> pd.DataFrame:
    return pd.read_csv(FIXTURES / "labeled.csv", dtype=str, keep_default_na=False)


@pytest.fixture(scope="session")
def trained(tmp_path_factory) -> dict[str, Path]:
    """Train tests/fixtures/tiny.toml through the CLI once; return its model and report dirs."""
    out = tmp_path_factory.mktemp("trained")
    status = main(
        [
            "train",
            "--config",
            str(FIXTURES / "tiny.toml"),
            "--models-dir",
            str(out / "models"),
            "--reports-dir",
            str(out / "reports"),
            "--quiet",
        ]
    )
    assert status == 0
    return {"model": out / "models" / "tiny", "report": out / "reports" / "tiny", "root": out}


def snapshot(*folders: Path) -> dict[Path, bytes]:
    """Every file's bytes under `folders`, but the experiment lock files (empty, kept on purpose)."""
    return {
        p: p.read_bytes()
        for folder in folders
        for p in folder.rglob("*")
        if p.is_file() and not p.name.startswith(LOCK_PREFIX)
    }
