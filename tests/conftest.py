"""Shared fixtures: the local Rebyte server (tests/fake_rebyte.py) and its key."""

from __future__ import annotations

import pytest
from fake_rebyte import FakeRebyte

API_KEY = "rbk_test_key"


@pytest.fixture
def api_key() -> str:
    return API_KEY


@pytest.fixture
def make_fake_rebyte():
    """A factory: make_fake_rebyte(**knobs) starts a FakeRebyte; all are stopped after."""
    started = []

    def make(**knobs) -> FakeRebyte:
        knobs.setdefault("key", API_KEY)
        server = FakeRebyte(**knobs).start()
        started.append(server)
        return server

    yield make
    for server in started:
        server.stop()


@pytest.fixture
def fake_rebyte(make_fake_rebyte) -> FakeRebyte:
    """A fresh local server with default knobs and short (0.3 s) prompts."""
    return make_fake_rebyte(prompt_duration=0.3)
