"""Tests run in any order (pytest-xdist spreads the files over workers): whatever a
test or docstring example does to ``os.environ`` is put back after it (conftest.py).

The two tests run in this order, in one worker (``--dist loadfile``).
"""

from __future__ import annotations

import os

PROBE = "KERASDNN_TEST_ISOLATION_PROBE"


def test_a_test_sets_and_changes_environment_variables() -> None:
    os.environ[PROBE] = "left by the test before"
    os.environ["KERAS_BACKEND"] = "not-a-backend"


def test_the_next_test_finds_the_environment_as_it_was() -> None:
    assert PROBE not in os.environ
    assert os.environ.get("KERAS_BACKEND") != "not-a-backend"
