"""Shared pytest configuration for the whole test tree.

Service fixtures (Redis, PostgreSQL, Neo4j) live in tests/integration/conftest.py; see
docs/services.md for how they find a server.
"""

from __future__ import annotations

from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
INTEGRATION_DIR = REPO_ROOT / "tests" / "integration"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Everything under tests/integration/ is an integration test, marked or not.

    So `pytest -m "not integration"` is always a quick run that needs no server.
    """
    del config
    for item in items:
        if item.path.is_relative_to(INTEGRATION_DIR):
            item.add_marker(pytest.mark.integration)
