"""Fixtures for the chart tests."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

import chartlib  # noqa: E402
from scenarios import SCENARIOS, rendered  # noqa: E402


@pytest.fixture(params=sorted(SCENARIOS))
def scenario(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
def docs(scenario: str) -> list[dict[str, Any]]:
    return chartlib.all_docs(rendered(scenario))


@pytest.fixture(scope="session")
def default_docs() -> list[dict[str, Any]]:
    return chartlib.all_docs(rendered("defaults"))
