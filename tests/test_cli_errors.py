"""The CLI's global options, exit codes, error messages and Ctrl-C, over real HTTP."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import time

import pytest
from cli_checks import (
    ERROR_PREFIX,
    api_get,
    api_task,
    assert_clean,
    create_task,
    error_lines,
    one_error,
    runner,
    wait_until,
)
from cli_runner import CLI, cli_env, interrupt, run_cli, start_cli

KEY_PAGE = "https://app.rebyte.ai/settings/api-keys"


@pytest.fixture
def cli(fake_rebyte, api_key):
    """cli(*args, ...): the CLI against the local server, held to the output contract."""
    return runner(fake_rebyte, api_key)


def closed_port_url() -> str:
    """A loopback base URL where nothing listens."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/v1"


# ------------------------------------------------------------------------ exit code 2


@pytest.mark.parametrize(
    "args",
    [
        [],
        ["frobnicate"],
        ["list", "--bogus"],
        ["--bogus", "list"],
        ["list", "--limit", "0"],
        ["list", "--limit", "101"],
        ["list", "--offset", "-1"],
        ["create"],
        ["create", "--prompt", "x", "--prompt-file", "prompt.txt"],
        ["create", "--prompt", ""],
        ["create", "--prompt", "x", "--file", "/no/such/file.txt"],
        ["create", "--prompt", "x", "--file-ref", "no-colon"],
        ["create", "--prompt", "x", "--github-url", "not a repo"],
        ["create", "--prompt-file", "/no/such/prompt.txt"],
        ["wait", "task-a", "task-b", "--prompt-id", "p1"],
        ["wait", "task-a", "--interval", "0"],
        ["wait", "task-a", "--timeout", "soon"],
        ["get", "task-a", "--max-retries", "-1"],
        ["batch", "specs.json", "--concurrency", "0"],
        ["share", "task-a", "--visibility", "everyone"],
        ["follow-up", "task-a"],
    ],
)
def test_bad_usage_exits_2_with_one_line_and_sends_nothing(cli, fake_rebyte, args):
    result = cli(*args)
    assert result.returncode == 2, result.stderr
    assert result.stdout == ""
    one_error(result)
    assert fake_rebyte.requests(listener=None) == []


def test_help_lists_every_exit_code(cli):
    result = cli("--help")
    assert result.returncode == 0
    for code in ("0", "1", "2", "3", "4", "5", "6", "7", "130"):
        assert re.search(rf"(?m)^\s+{code}\s+\S", result.stdout), code
    assert cli("create", "--help").returncode == 0


def test_version(cli, monkeypatch):
    monkeypatch.syspath_prepend(str(CLI.parent))
    from rebyte_client import __version__

    for args in (["--version"], ["--version", "list"]):
        result = cli(*args)
        assert result.returncode == 0, result.stderr
        assert result.stdout == f"rebyte_cli.py {__version__}\n"


def test_requests_missing_says_how_to_install_it(cli, fake_rebyte, tmp_path):
    (tmp_path / "requests.py").write_text("raise ImportError('No module named requests')\n")
    result = cli("list", env_extra={"PYTHONPATH": str(tmp_path)})
    assert result.returncode == 2, result.stderr
    message = one_error(result)
    assert "pip install requests" in message
    assert len(result.stderr_lines) == 1
    assert fake_rebyte.requests(listener=None) == []


# ------------------------------------------------------------------------ exit code 3


def test_missing_key_says_where_to_get_one(fake_rebyte, api_key):
    result = run_cli("list", env=cli_env(fake_rebyte.base_url, None))
    assert_clean(result, api_key)
    assert result.returncode == 3, result.stderr
    message = one_error(result)
    assert len(result.stderr_lines) == 1
    assert KEY_PAGE in message and "export REBYTE_API_KEY=" in message
    assert fake_rebyte.requests(listener=None) == []


def test_rejected_key_exits_3_without_showing_it(cli, fake_rebyte):
    wrong = "rbk_wrong_secret_key_123"
    result = cli("list", key=wrong)
    assert result.returncode == 3, result.stderr
    message = one_error(result)
    assert "REBYTE_API_KEY" in message and KEY_PAGE in message
    assert len(fake_rebyte.requests("GET", "/v1/tasks")) == 1  # a 401 is not retried


@pytest.mark.parametrize("where", ["env", "before", "after"])
def test_plain_http_to_a_remote_host_is_refused(api_key, where):
    url = "http://api.example.com/v1"
    args = ["get", "task-a"]
    env = cli_env(url if where == "env" else None, api_key)
    if where == "before":
        args = ["--base-url", url, *args]
    elif where == "after":
        args = [*args, "--base-url", url]
    result = run_cli(*args, env=env)
    assert_clean(result, api_key)
    assert result.returncode == 3, result.stderr
    assert "https://" in one_error(result)


# ----------------------------------------------------------------------- exit codes 4, 5


def test_unknown_task_exits_4(cli):
    for args in (["get", "no-such-task"], ["follow-up", "no-such-task", "-p", "x"]):
        result = cli(*args)
        assert result.returncode == 4, result.stderr
        assert "not found" in one_error(result)
        assert result.stdout == ""


def test_api_rejection_exits_5(cli, fake_rebyte):
    bad_executor = cli("create", "--prompt", "x", "--executor", "nonsense")
    assert bad_executor.returncode == 5, bad_executor.stderr
    assert "executor" in one_error(bad_executor)
    unknown_workspace = cli("create", "--prompt", "x", "--workspace", "ws-unknown")
    assert unknown_workspace.returncode == 5, unknown_workspace.stderr
    assert "workspaceId" in one_error(unknown_workspace)
    assert len(fake_rebyte.requests("POST", "/v1/tasks")) == 2  # a 400 is not retried


def test_rate_limit_after_retries_exits_5(cli, fake_rebyte):
    fake_rebyte.inject("GET", "/v1/tasks", "429", count=5)
    result = cli("list", "--max-retries", "0")
    assert result.returncode == 5, result.stderr
    assert "rate limited" in one_error(result)
    assert len(fake_rebyte.requests("GET", "/v1/tasks")) == 1


def test_upload_refused_by_the_storage_host_exits_5_and_creates_nothing(cli, fake_rebyte, tmp_path):
    path = tmp_path / "f.txt"
    path.write_text("x")
    fake_rebyte.inject("PUT", "/upload/.*", "403-expired")
    result = cli("create", "--prompt", "x", "--file", str(path))
    assert result.returncode == 5, result.stderr
    assert "expired" in one_error(result)
    assert fake_rebyte.requests("POST", "/v1/tasks") == []


# ------------------------------------------------------------------------ exit code 6


def test_unreachable_server_exits_6(api_key):
    result = run_cli("list", "--max-retries", "0", env=cli_env(closed_port_url(), api_key))
    assert_clean(result, api_key)
    assert result.returncode == 6, result.stderr
    assert "--base-url" in one_error(result)


def test_a_create_that_never_connected_says_nothing_was_sent(api_key):
    result = run_cli("create", "--prompt", "x", env=cli_env(closed_port_url(), api_key))
    assert result.returncode == 6, result.stderr
    message = one_error(result)
    assert "nothing was sent" in message and "try again" in message
    assert "may have been created" not in message


def test_a_create_cut_off_after_sending_never_says_nothing_was_sent(cli, fake_rebyte):
    fake_rebyte.inject("POST", "/v1/tasks", "reset")
    result = cli("create", "--prompt", "x")
    assert result.returncode == 6, result.stderr
    message = one_error(result)
    assert "may have been created" in message and "nothing was sent" not in message


def test_create_answered_502_is_not_retried_and_may_exist(cli, fake_rebyte):
    fake_rebyte.inject("POST", "/v1/tasks", "502")
    result = cli("create", "--prompt", "x")
    assert result.returncode == 6, result.stderr
    assert len(fake_rebyte.requests("POST", "/v1/tasks")) == 1
    message = one_error(result)
    assert "may have been created" in message and "list" in message


def test_server_errors_are_retried_max_retries_times_then_exit_6(cli, fake_rebyte):
    fake_rebyte.inject("GET", "/v1/tasks", "500", count=10)
    result = cli("list", "--max-retries", "1")
    assert result.returncode == 6, result.stderr
    assert len(fake_rebyte.requests("GET", "/v1/tasks")) == 2
    fake_rebyte.clear_log()
    before = cli("--max-retries", "0", "list")
    assert before.returncode == 6, before.stderr
    assert len(fake_rebyte.requests("GET", "/v1/tasks")) == 1


def test_timeout_bounds_each_call(cli, fake_rebyte, api_key):
    task = api_task(fake_rebyte, api_key, "x")
    fake_rebyte.inject("GET", r"/v1/tasks/[^/]+", "stall")
    started = time.monotonic()
    result = cli("get", task["id"], "--timeout", "1", "--max-retries", "0")
    assert result.returncode == 6, result.stderr
    assert time.monotonic() - started < 5
    one_error(result)


def test_create_timeout_while_provisioning_may_exist_exits_6(make_fake_rebyte, api_key):
    server = make_fake_rebyte(provision_delay=5)
    started = time.monotonic()
    result = runner(server, api_key)("create", "--prompt", "x", "--timeout", "0.5")
    assert result.returncode == 6, result.stderr
    assert time.monotonic() - started < 4
    assert "may have been created" in one_error(result)
    assert len(server.requests("POST", "/v1/tasks")) == 1  # never resent


# -------------------------------------------------------------------- global options


def test_quiet_before_or_after_the_command_prints_only_the_url(cli):
    for args in (["-q", "create", "--prompt", "x"], ["create", "--prompt", "x", "-q"]):
        result = cli(*args)
        assert result.returncode == 0, result.stderr
        assert re.fullmatch(r"https://\S+/run/\S+\n", result.stdout), result.stdout
        assert result.stderr == ""


@pytest.mark.parametrize("where", ["before", "after"])
def test_base_url_option_overrides_the_environment(fake_rebyte, api_key, where):
    env = cli_env(closed_port_url(), api_key)
    option = ["--base-url", fake_rebyte.base_url]
    args = [*option, "list"] if where == "before" else ["list", *option]
    result = run_cli(*args, env=env)
    assert_clean(result, api_key)
    assert result.returncode == 0, result.stderr
    assert result.json()["data"] == []
    assert len(fake_rebyte.requests("GET", "/v1/tasks")) == 1


def test_verbose_logs_requests_without_the_key_or_the_upload_signature(cli, tmp_path):
    path = tmp_path / "f.txt"
    path.write_text("x")
    result = cli("-v", "create", "--prompt", "x", "--file", str(path))
    assert result.returncode == 0, result.stderr
    assert re.search(r"POST http://127\.0\.0\.1:\d+/v1/files", result.stderr)
    assert re.search(r"PUT http://127\.0\.0\.2:\d+/upload/", result.stderr)
    assert re.search(r"POST http://127\.0\.0\.1:\d+/v1/tasks", result.stderr)
    assert "signature" not in result.stderr
    result.json()  # stdout stays one JSON document
    after = cli("list", "-v")
    assert "GET http://127.0.0.1" in after.stderr
    assert "GET " not in cli("list").stderr


def test_progress_on_stderr_and_no_progress_silences_it(cli):
    shown = cli("create", "--prompt", "x", "--wait", "--interval", "0.2")
    assert shown.returncode == 0, shown.stderr
    shown.json()
    progress = [line for line in shown.stderr_lines if "prompts done" in line]
    assert progress  # plain lines (stderr is not a terminal), one per change, not per poll
    assert len(progress) == len(set(progress))
    silent = cli("create", "--prompt", "x", "--wait", "--interval", "0.2", "--no-progress")
    assert silent.returncode == 0, silent.stderr
    assert silent.json()["status"] == "completed"
    assert "prompts done" not in silent.stderr
    assert "creating the task" not in silent.stderr


# ------------------------------------------------------------------------- Ctrl-C


def test_ctrl_c_during_a_wait_leaves_the_task_running(fake_rebyte, api_key):
    task = api_task(fake_rebyte, api_key, "Long [duration=30]")
    env = cli_env(fake_rebyte.base_url, api_key)
    fake_rebyte.clear_log()
    process = start_cli("wait", task["id"], "--interval", "0.2", env=env)
    wait_until(lambda: fake_rebyte.requests("GET", f"/v1/tasks/{task['id']}"), what="a poll")
    result = interrupt(process, after=0.2)
    assert_clean(result, api_key)
    assert result.returncode == 130, result.stderr
    [line] = [line for line in error_lines(result) if "interrupted" in line]
    assert task["id"] in line and task["url"] in line and "keeps running" in line
    assert result.json()["tasks"] == [{"id": task["id"], "url": task["url"]}]
    assert fake_rebyte.requests("DELETE") == []
    assert fake_rebyte.requests("POST", r"/v1/tasks/[^/]+/cancel") == []
    status, now = api_get(fake_rebyte, api_key, f"/tasks/{task['id']}")
    assert status == 200 and now["status"] == "running"


def test_ctrl_c_during_a_watch_leaves_the_task_running(fake_rebyte, api_key):
    task = api_task(fake_rebyte, api_key, "Long [duration=30]")
    env = cli_env(fake_rebyte.base_url, api_key)
    process = start_cli("watch", task["id"], env=env)
    wait_until(lambda: fake_rebyte.requests("GET", r"/v1/tasks/[^/]+/events"), what="a stream")
    result = interrupt(process, after=0.2)
    assert_clean(result, api_key)
    assert result.returncode == 130, result.stderr
    [line] = [line for line in error_lines(result) if "interrupted" in line]
    assert task["id"] in line and task["url"] in line and "keeps running" in line
    assert api_get(fake_rebyte, api_key, f"/tasks/{task['id']}")[1]["status"] == "running"


def test_ctrl_c_during_create_says_the_task_may_exist(make_fake_rebyte, api_key):
    server = make_fake_rebyte(provision_delay=30)
    process = start_cli("create", "--prompt", "x", env=cli_env(server.base_url, api_key))
    wait_until(lambda: server.requests("POST", "/v1/tasks"), what="the create request")
    result = interrupt(process, after=0.2)
    assert_clean(result, api_key)
    assert result.returncode == 130, result.stderr
    message = [line for line in error_lines(result) if "interrupted" in line]
    assert len(message) == 1 and "may exist" in message[0] and "list" in message[0]
    assert result.stdout == ""


def test_ctrl_c_during_an_upload_creates_nothing(fake_rebyte, api_key, tmp_path):
    path = tmp_path / "big.bin"
    path.write_bytes(b"x" * 100_000)
    fake_rebyte.inject("PUT", "/upload/.*", "stall")
    env = cli_env(fake_rebyte.base_url, api_key)
    process = start_cli("create", "--prompt", "x", "--file", str(path), env=env)
    wait_until(lambda: fake_rebyte.requests("PUT", listener="upload"), what="the upload")
    result = interrupt(process, after=0.2)
    assert_clean(result, api_key)
    assert result.returncode == 130, result.stderr
    assert "interrupted" in one_error(result)
    assert fake_rebyte.requests("POST", "/v1/tasks") == []


def test_ctrl_c_during_create_wait_names_the_created_task(fake_rebyte, api_key):
    env = cli_env(fake_rebyte.base_url, api_key)
    process = start_cli(
        "create", "-p", "Long [duration=30]", "--wait", "--interval", "0.2", env=env
    )
    wait_until(lambda: fake_rebyte.requests("GET", r"/v1/tasks/[^/]+"), what="a poll")
    result = interrupt(process, after=0.2)
    assert_clean(result, api_key)
    assert result.returncode == 130, result.stderr
    [task] = result.json()["tasks"]
    [line] = [line for line in error_lines(result) if "interrupted" in line]
    assert task["id"] in line and task["url"] in line and "keeps running" in line


def test_ctrl_c_quiet_prints_only_the_url(fake_rebyte, api_key):
    task = api_task(fake_rebyte, api_key, "Long [duration=30]")
    env = cli_env(fake_rebyte.base_url, api_key)
    fake_rebyte.clear_log()
    process = start_cli("wait", task["id"], "-q", "--interval", "0.2", env=env)
    wait_until(lambda: fake_rebyte.requests("GET", f"/v1/tasks/{task['id']}"), what="a poll")
    result = interrupt(process, after=0.2)
    assert_clean(result, api_key)
    assert result.returncode == 130, result.stderr
    assert result.stdout == task["url"] + "\n"
    assert any(line.startswith(ERROR_PREFIX) for line in result.stderr_lines)


def test_errors_never_show_a_traceback_even_on_odd_answers(cli, fake_rebyte, api_key):
    task = create_task(cli, "x")
    for fault in ("html-200", "truncated-json", "wrong-shape", "502-html"):
        fake_rebyte.inject("GET", r"/v1/tasks/[^/]+", fault, count=5)
        result = cli("get", task["id"], "--max-retries", "0")
        fake_rebyte.clear_faults()
        assert result.returncode == 6, (fault, result.stderr)
        assert result.stdout == ""
        one_error(result)


# ------------------------------------------------------------------- on a terminal


def run_with_terminal_stderr(args, env) -> tuple:
    """Run the CLI with stderr on a pseudo-terminal; return (exit code, stdout, stderr)."""
    pty = pytest.importorskip("pty")
    master, slave = pty.openpty()
    process = subprocess.Popen(
        [sys.executable, str(CLI), *args],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=slave,
        env=env,
    )
    os.close(slave)
    stdout, _ = process.communicate(timeout=30)
    shown = b""
    while True:
        try:
            chunk = os.read(master, 65536)
        except OSError:  # the other side is closed
            break
        if not chunk:
            break
        shown += chunk
    os.close(master)
    return process.returncode, stdout.decode(), shown.decode()


def test_on_a_terminal_one_live_line_and_no_color_respected(fake_rebyte, api_key):
    args = ["create", "--prompt", "x [duration=0.6]", "--wait", "--interval", "0.2"]
    code, stdout, shown = run_with_terminal_stderr(args, cli_env(fake_rebyte.base_url, api_key))
    assert code == 0, shown
    assert json.loads(stdout)["status"] == "completed"  # stdout is still only JSON
    assert "\r\x1b[K" in shown and "prompts 1/1" in shown  # a line redrawn in place
    assert "\x1b[32mcompleted" in shown
    assert api_key not in shown and "Traceback" not in shown

    env = cli_env(fake_rebyte.base_url, api_key, NO_COLOR="1")
    code, stdout, plain = run_with_terminal_stderr(args, env)
    assert code == 0, plain
    assert "prompts 1/1" in plain
    assert not re.search(r"\x1b\[[0-9;]*m", plain)  # no colors


BROKEN_COMMAND = """
import sys
sys.path.insert(0, sys.argv[1])
from rebyte.cli import app, tasks

def broken(args, out, run):
    raise ZeroDivisionError("a bug in the CLI")

tasks.COMMANDS[("list",)].handler = broken
sys.exit(app.main(sys.argv[2:]))
"""


@pytest.mark.parametrize("verbose", [False, True])
def test_a_bug_is_one_line_and_exit_70_not_a_traceback(verbose):
    args = ["list", "-v"] if verbose else ["list"]
    result = subprocess.run(
        [sys.executable, "-c", BROKEN_COMMAND, str(CLI.parent), *args],
        capture_output=True,
        text=True,
        timeout=30,
        env=cli_env(None, None),
    )
    assert result.returncode == 70
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("rebyte_cli.py: error: internal error (ZeroDivisionError: a bug")
    assert ("Traceback" in result.stderr) == verbose  # details only when asked for
    assert result.stdout == ""
