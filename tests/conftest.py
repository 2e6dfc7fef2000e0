"""Shared fixtures: the local Rebyte server (tests/fake_rebyte.py), its key, and the
hostile server (tests/hostile_server.py)."""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import pytest
from cli_runner import PYCACHE_VARIABLE, warm_bytecode_cache
from fake_rebyte import FakeRebyte
from hostile_server import HostileServer

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "scripts"))
from rebyte_client import RebyteClient  # noqa: E402

API_KEY = "rbk_test_key"


def pytest_configure(config):
    """One bytecode cache for the session's CLI runs, made by the first process (the xdist
    controller, whose workers inherit it): outside the checkout, removed at the end."""
    if hasattr(config, "workerinput") or os.environ.get(PYCACHE_VARIABLE):
        return
    folder = tempfile.mkdtemp(prefix="rebyte-tests-pycache-")
    os.environ[PYCACHE_VARIABLE] = folder
    config._rebyte_pycache = folder
    warm_bytecode_cache(folder)


# Under pytest-xdist (make test) each file runs whole in one worker; the files that take
# longest go out first, so that no long one starts last while the other worker sits idle.
LONG_FILES = (
    "test_cli_habits.py", "test_fake_server.py", "test_server_conforms.py",
    "test_reliability.py", "test_docs.py", "test_hostile.py", "test_client_e2e.py",
    "test_cli_tasks.py", "test_cli_output.py", "test_cli_errors.py",
)


def pytest_collection_modifyitems(session, config, items):
    def rank(item) -> int:
        name = item.path.name
        return LONG_FILES.index(name) if name in LONG_FILES else len(LONG_FILES)

    items.sort(key=rank)  # stable: the order within a file, and of the others, is kept


def pytest_unconfigure(config):
    folder = getattr(config, "_rebyte_pycache", None)
    if folder:
        os.environ.pop(PYCACHE_VARIABLE, None)
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(autouse=True)
def local_record_in_tmp(tmp_path_factory, monkeypatch):
    """Every test's local record (the CLI's state folder) in a folder of its own, never
    the user's: XDG_STATE_HOME reaches the CLI subprocesses through the environment."""
    state = tmp_path_factory.mktemp("state")
    monkeypatch.setenv("XDG_STATE_HOME", str(state))
    monkeypatch.delenv("REBYTE_RECORD", raising=False)
    return state / "skill-as-a-service"


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


@pytest.fixture
def client_for(api_key):
    """client_for(server, **options): a client with the real retry policy but short pauses,
    closed after the test (a module may define its own, as test_client_e2e does)."""
    made = []

    def make(server, **options) -> RebyteClient:
        client = RebyteClient(api_key, base_url=server.base_url, **options)
        client._sleep = lambda seconds: time.sleep(min(seconds, 0.02))
        made.append(client)
        return client

    yield make
    for client in made:
        client.close()
