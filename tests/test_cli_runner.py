"""The suite's CLI runs: a child of the fork server (tests/cli_forkserver.py) prints the
same bytes and exits the same way as `python3 scripts/rebyte_cli.py` in a new
interpreter, and a run whose environment changes interpreter start-up gets one."""

from __future__ import annotations

import os
import re
import subprocess
import time
from pathlib import Path

import cli_runner
import pytest
from cli_runner import cli_env, run_cli, run_cli_in_new_interpreter

STILL_RUNNING = 120.0  # the task stays running while both ways read it


def normalized(result) -> tuple:
    scrub = lambda text: re.sub(r"\breq_[0-9a-f]+", "req_…", text)  # noqa: E731
    return result.returncode, scrub(result.stdout), scrub(result.stderr)


def both_ways(*args, env, stdin="", cwd=None) -> tuple:
    forked = run_cli(*args, env=env, stdin=stdin, cwd=cwd)
    fresh = run_cli_in_new_interpreter(*args, env=env, stdin=stdin, cwd=cwd)
    return normalized(forked), normalized(fresh)


FORKING = os.environ.get(cli_runner.FORK_SERVER_VARIABLE, "1") != "0"
pytestmark = pytest.mark.skipif(not FORKING, reason=f"{cli_runner.FORK_SERVER_VARIABLE}=0")


def test_runs_go_to_the_fork_server_by_default():
    assert cli_runner._fork_server(cli_env(None, None)) is not None


@pytest.mark.parametrize(
    "variables",
    [{"PYTHONIOENCODING": "ascii"}, {"LC_ALL": "C"}, {"PYTHONUTF8": "1"}, {"LANG": "C"}],
)
def test_a_run_that_changes_interpreter_start_up_gets_a_new_interpreter(variables):
    assert cli_runner._fork_server(cli_env(None, None, **variables)) is None


def test_a_forked_run_matches_a_new_interpreter(fake_rebyte, api_key, tmp_path):
    created = run_cli(
        "create",
        "-p",
        f"Résumé ✓ [duration={STILL_RUNNING:g}]",
        env=cli_env(fake_rebyte.base_url, api_key),
    ).json()
    (tmp_path / "notes.txt").write_text("a file in the run's own folder\n", encoding="utf-8")
    env = cli_env(fake_rebyte.base_url, api_key)
    cases = [
        (("--help",), ""),
        (("create", "--help"), ""),
        (("create",), ""),  # a usage error: exit 2, one line
        (("get", "no-such-task"), ""),  # the API's 404, with its request id
        (("get", created["id"]), ""),
        (("get", created["id"], "-q"), ""),
        (("create", "--prompt-file", "-", "--dry-run"), "Écris ✓ from stdin\n"),
        (("create", "-p", "x", "--file", "notes.txt", "--dry-run"), ""),
        (("list", "--limit", "1", "--json", "id"), ""),
    ]
    for args, stdin in cases:
        forked, fresh = both_ways(*args, env=env, stdin=stdin, cwd=str(tmp_path))
        assert forked == fresh, args


def test_a_missing_key_and_an_unreachable_server_match(tmp_path):
    env = cli_env("http://127.0.0.1:9", None)
    forked, fresh = both_ways("get", "task-1", env=env)
    assert forked == fresh and forked[0] == 3  # no key: exit 3
    env = cli_env("http://127.0.0.1:9", "rbk_k", REBYTE_MAX_RETRIES="0")
    forked, fresh = both_ways("get", "task-1", env=env)
    assert forked == fresh and forked[0] != 0


def test_a_run_past_its_timeout_is_killed(make_hostile_server):
    server = make_hostile_server("json-trickle", trickle=5.0)
    env = cli_env(server.base_url, "rbk_k", REBYTE_READ_TIMEOUT="60")
    fork_server = cli_runner._fork_server(env)
    started = time.monotonic()
    with pytest.raises(subprocess.TimeoutExpired):
        run_cli("get", "task-1", env=env, timeout=1)
    assert time.monotonic() - started < 10
    deadline = time.monotonic() + 10
    while children_of(fork_server._process.pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert children_of(fork_server._process.pid) == []
    assert run_cli("--version", env=env).returncode == 0


def children_of(pid: int) -> list:
    found = []
    for status in Path("/proc").glob("[0-9]*/status"):
        try:
            text = status.read_text()
        except OSError:
            continue
        if re.search(rf"^PPid:\s+{pid}$", text, re.M) and "State:\tZ" not in text:
            found.append(int(status.parent.name))
    return found
