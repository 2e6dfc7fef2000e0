"""Shared fixtures: the local Rebyte server (tests/fake_rebyte.py), its key, and the
hostile server (tests/hostile_server.py)."""

from __future__ import annotations

import pytest
from fake_rebyte import FakeRebyte
from hostile_server import HostileServer

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


@pytest.fixture
def make_hostile_server():
    """A factory: make_hostile_server(mode, **options) starts a HostileServer; all stop after."""
    started = []

    def make(mode: str, **options) -> HostileServer:
        server = HostileServer(mode, **options).start()
        started.append(server)
        return server

    yield make
    for server in started:
        server.stop()
