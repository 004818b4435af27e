"""Shared fixtures: the repository root and a validated default config."""

from __future__ import annotations

from pathlib import Path

import pytest

from ml import config as configuration

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return ROOT


@pytest.fixture(scope="session")
def default_config() -> configuration.Config:
    return configuration.load(ROOT / "pipeline.toml")
