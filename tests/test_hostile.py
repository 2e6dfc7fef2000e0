"""Issue 13: the client and the CLI against a hostile server and a hostile environment.

Each case drives tests/hostile_server.py (a raw-socket server, one misbehaviour per mode)
from the library and from the CLI, and asserts the error, the exit code, and that the call
ended in bounded time (and memory, for the big bodies).
"""

from __future__ import annotations

import sys
import time

import pytest
from cli_runner import ROOT, cli_env, run_cli

if str(ROOT / "scripts") not in sys.path:
    sys.path.insert(0, str(ROOT / "scripts"))

import rebyte_client as rc  # noqa: E402

KEY = "rbk_SECRET_hostile_5c1e2"
SECRET_PARTS = (KEY, KEY[4:])
EXIT_NETWORK = 6


def client_for(base_url: str, **options) -> rc.RebyteClient:
    options.setdefault("max_retries", 0)
    options.setdefault("read_timeout", 5)
    options.setdefault("connect_timeout", 3)
    return rc.RebyteClient(KEY, base_url=base_url, **options)


def cli(server_url: str, *args: str, timeout: float = 60, **extra: str):
    result = run_cli(*args, env=cli_env(server_url, KEY, **extra), timeout=timeout)
    for part in SECRET_PARTS:
        assert part not in result.stdout + result.stderr
    return result


class Timer:
    def __enter__(self) -> Timer:
        self.started = time.monotonic()
        return self

    def __exit__(self, *exc_info) -> None:
        self.elapsed = time.monotonic() - self.started


# ----------------------------------------------------------------------------------- TLS


def tls_url(server) -> str:
    return server.base_url.replace("http://", "https://")


def test_tls_failure_is_a_connection_error_that_says_tls(make_hostile_server):
    server = make_hostile_server("not-http")
    with pytest.raises(rc.APIConnectionError) as caught:
        client_for(tls_url(server)).get_task("task-1")
    text = str(caught.value)
    assert "TLS" in text and "REQUESTS_CA_BUNDLE" in text and "SSL_CERT_FILE" in text


def test_tls_failure_exits_6_with_one_line(make_hostile_server):
    server = make_hostile_server("not-http")
    result = cli(tls_url(server), "get", "task-1")
    assert result.returncode == EXIT_NETWORK, result.stderr
    assert len(result.stderr_lines) == 1 and "TLS" in result.stderr
    assert "Traceback" not in result.stderr


def test_exception_walk_skips_string_reasons():
    import ssl

    error = ssl.SSLError(1, "[SSL: WRONG_VERSION_NUMBER] wrong version number")
    error.reason = "WRONG_VERSION_NUMBER"  # a string, as the ssl module sets it
    outer = OSError("wrapped")
    outer.__cause__ = error
    chain = list(rc._exception_chain(outer))
    assert all(isinstance(item, BaseException) for item in chain)
    assert error in chain
