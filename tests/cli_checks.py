"""Checks shared by the CLI tests (tests/test_cli_*.py): what every run must respect.

The runner itself is tests/cli_runner.py; this adds the output contract that every
CLI run is held to, and a `cli` fixture bound to the local server.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request

from cli_runner import CliResult, cli_env, run_cli

ERROR_PREFIX = "rebyte_cli.py: error:"


def assert_clean(result: CliResult, api_key: str) -> None:
    """What holds for any run: no traceback, no key, and plain stderr (it is not a terminal)."""
    assert "Traceback" not in result.stderr, result.stderr
    assert api_key not in result.stderr, result.stderr
    assert api_key not in result.stdout, result.stdout
    assert "\x1b" not in result.stderr, repr(result.stderr)
    assert "\r" not in result.stderr, repr(result.stderr)


def error_lines(result: CliResult) -> list:
    return [line for line in result.stderr_lines if line.startswith(ERROR_PREFIX)]


def one_error(result: CliResult) -> str:
    """The run's error message: exactly one line on stderr says what went wrong."""
    lines = error_lines(result)
    assert len(lines) == 1, result.stderr
    return lines[0]


def runner(server, api_key: str):
    """run(*args, env_extra=..., stdin=..., cwd=...) for the CLI pointed at `server`."""

    def run(*args: str, env_extra=None, key=api_key, **kwargs) -> CliResult:
        env = cli_env(server.base_url, key, **(env_extra or {}))
        result = run_cli(*args, env=env, **kwargs)
        assert_clean(result, api_key)
        if key and key != api_key:
            assert_clean(result, key)
        return result

    return run


def create_task(run, prompt: str, *options: str, code: int = 0) -> dict:
    """Create a task through the CLI and return its JSON."""
    result = run("create", "--prompt", prompt, *options)
    assert result.returncode == code, result.stderr
    return result.json()


def creates(server) -> list:
    """The JSON bodies of the POST /v1/tasks the server received."""
    return [entry["json"] for entry in server.requests("POST", "/v1/tasks")]


def wait_until(predicate, timeout: float = 10.0, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


def api_call(server, api_key: str, method: str, path: str, body=None):
    """(status, JSON) of a request on the server, straight over HTTP (no CLI, no proxy)."""
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    data = json.dumps(body).encode() if body is not None else None
    headers = {"API_KEY": api_key}
    if data is not None:
        headers["Content-Type"] = "application/json"
    request = urllib.request.Request(
        server.base_url + path, data=data, headers=headers, method=method
    )
    try:
        with opener.open(request, timeout=10) as response:
            return response.status, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"null")


def api_get(server, api_key: str, path: str):
    return api_call(server, api_key, "GET", path)


def api_task(server, api_key: str, prompt: str) -> dict:
    """A task made straight on the server (set-up that need not go through the CLI)."""
    status, task = api_call(server, api_key, "POST", "/tasks", {"prompt": prompt})
    assert status == 201, task
    return task
