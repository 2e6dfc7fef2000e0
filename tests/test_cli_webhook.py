"""The `webhook` commands, as a subprocess against the local server over real HTTP.

The secret comes from a file or an environment variable, never the command line,
and shows up nowhere: stdout, stderr, -v logs, errors.
"""

from __future__ import annotations

import json
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from cli_checks import api_call, assert_clean, one_error, runner
from cli_runner import CLI, cli_env, run_cli
from docs_support import Block, parse_command

sys.path.insert(0, str(CLI.parent))
from rebyte.cli import webhook  # noqa: E402

SECRET = "whsec_cli-9Tq2-never-shown"
HOOK = "https://example.com/hooks/rebyte"
EXAMPLES = [
    line for path, row in webhook.COMMANDS.items() if path[0] == "webhook" for line in row.examples
]


@pytest.fixture
def server(make_fake_rebyte):
    return make_fake_rebyte(retry_after="0")


@pytest.fixture
def cli(server, api_key):
    return runner(server, api_key)


def made(server, api_key, url=HOOK) -> str:
    """A webhook for `url`: the one registered already (the server would add a second)."""
    _, listed = api_call(server, api_key, "GET", "/webhooks")
    for hook in listed["data"]:
        if hook["url"] == url:
            return hook["id"]
    status, hook = api_call(
        server, api_key, "POST", "/webhooks", {"url": url, "events": ["task.completed"]}
    )
    assert status in (200, 201), hook
    return hook["id"]


def hook_requests(server, method=None) -> list:
    return server.requests(method, r"/v1/webhooks(/.*)?")


def assert_secret_hidden(result) -> None:
    assert SECRET not in result.stdout, result.stdout
    assert SECRET not in result.stderr, result.stderr


def test_every_verb_has_examples_that_run(server, api_key, tmp_path):
    assert {path[1] for path in webhook.COMMANDS if path[0] == "webhook"} == {
        "add",
        "list",
        "get",
        "delete",
        "public-key",
    }
    (tmp_path / "scripts").symlink_to(CLI.parent, target_is_directory=True)
    for line in EXAMPLES:
        assert line.startswith("python3 scripts/rebyte_cli.py webhook "), line
        command = parse_command(Block("help", 0, "bash", line), 0, line)
        args = [made(server, api_key) if a == "WEBHOOK_ID" else a for a in command.args]
        env = cli_env(server.base_url, api_key, HOOK_SECRET=SECRET)
        result = run_cli(*args, env=env, cwd=str(tmp_path))
        assert result.returncode == 0, (args, result.stderr)
        assert_clean(result, api_key)
        assert_secret_hidden(result)
        if command.quiet:
            assert result.stdout.strip() and not result.stdout.startswith("{"), result.stdout
        else:
            result.json()


@pytest.mark.parametrize("source", ["file", "env"])
def test_the_secret_reaches_the_server_and_nothing_else(cli, server, tmp_path, source):
    if source == "file":
        path = tmp_path / "secret.txt"
        path.write_text(SECRET + "\n", encoding="utf-8")
        given, env = ["--secret-file", str(path)], {}
    else:
        given, env = ["--secret-env", "MY_HOOK_SECRET"], {"MY_HOOK_SECRET": SECRET}
    result = cli(
        "webhook",
        "add",
        HOOK,
        "--event",
        "task.completed",
        "task.failed",
        "--description",
        "CI",
        *given,
        "-v",
        env_extra=env,
    )
    assert result.returncode == 0, result.stderr
    hook = result.json()
    assert hook["hasSecret"] is True
    assert server.webhook_secret(hook["id"]) == SECRET
    assert "POST" in result.stderr  # -v logged the request...
    assert_secret_hidden(result)  # ...but not the secret
    for args in (["list"], ["get", hook["id"]]):
        shown = cli("webhook", *args, "-v")
        assert shown.returncode == 0 and HOOK in shown.stdout
        assert_secret_hidden(shown)


@pytest.mark.parametrize("source", ["file", "env"])
def test_errors_after_reading_the_secret_do_not_show_it(cli, server, api_key, tmp_path, source):
    for n in range(3):
        made(server, api_key, f"{HOOK}/{n}")
    path = tmp_path / "secret.txt"
    path.write_text(SECRET, encoding="utf-8")
    given = ["--secret-file", str(path)] if source == "file" else ["--secret-env", "S"]
    env = {"S": SECRET}
    limited = cli("webhook", "add", HOOK, "--event", "task.completed", *given, "-v", env_extra=env)
    assert limited.returncode == 5
    line = one_error(limited)
    assert "at most 3" in line and "webhook delete" in line
    assert_secret_hidden(limited)
    server.inject("POST", "/v1/webhooks", "500", after=True)
    unknown = cli("webhook", "add", HOOK + "/x", "--event", "task.failed", *given, env_extra=env)
    assert unknown.returncode == 6 and "webhook list" in one_error(unknown)
    assert_secret_hidden(unknown)


class _Echo(BaseHTTPRequestHandler):
    """A server that quotes the request body, secret included, in its error."""

    def do_POST(self) -> None:  # noqa: N802 - http.server's name
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0)).decode()
        data = json.dumps({"error": {"code": "bad", "message": f"refused {body}"}}).encode()
        self.send_response(422)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args) -> None:
        pass


def test_a_server_that_echoes_the_secret_does_not_get_it_shown(api_key):
    echo = ThreadingHTTPServer(("127.0.0.1", 0), _Echo)
    threading.Thread(target=echo.serve_forever, daemon=True).start()
    try:
        env = cli_env(f"http://127.0.0.1:{echo.server_port}/v1", api_key, S=SECRET)
        result = run_cli(
            "webhook",
            "add",
            HOOK,
            "--event",
            "task.completed",
            "--secret-env",
            "S",
            "-v",
            "--allow-duplicate",
            env=env,
        )
    finally:
        echo.shutdown()
        echo.server_close()
    assert result.returncode == 5, result.stderr
    assert "refused" in one_error(result)
    assert_clean(result, api_key)
    assert_secret_hidden(result)


@pytest.mark.parametrize(
    "args",
    [
        [HOOK, "--event", "task.completed", "--secret", SECRET],
        [HOOK, "--event", "task.completed", "--secret-file", "missing.txt"],
        [HOOK, "--event", "task.completed", "--secret-env", "UNSET_VARIABLE_X"],
        [HOOK, "--event", "task.completed", "--secret-env", "S", "--secret-file", "s.txt"],
        ["http://example.com/hook", "--event", "task.completed"],
        ["https://exa mple.com/hook", "--event", "task.completed"],
        [HOOK, "--event", "task.done"],
        [HOOK, "--event", ","],
        [HOOK],
        [HOOK, "--event", "task.completed", "--description", "d" * 501],
    ],
)
def test_bad_input_is_refused_with_nothing_sent(cli, server, args):
    result = cli("webhook", "add", *args, env_extra={"S": SECRET})
    assert result.returncode == 2, result.stderr
    one_error(result)
    assert_secret_hidden(result)
    assert hook_requests(server) == []


@pytest.mark.parametrize(
    "args, says",
    [
        (["--event", "task.completed", "task.failed", HOOK], "put the URL before --event"),
        (["--event", "task.completed"], "required: URL"),
        (
            [HOOK, "--event", "task.completed", "--secret-env", "UNSET_VARIABLE_X"],
            "ask the user to export it (never put the secret on the command line), "
            "or use --secret-file PATH",
        ),
    ],
)
def test_a_misplaced_url_or_unset_secret_says_what_to_do(cli, server, args, says):
    result = cli("webhook", "add", *args)
    assert result.returncode == 2, result.stderr
    assert says in one_error(result)
    assert hook_requests(server) == []


def test_an_empty_secret_file_is_refused(cli, server, tmp_path):
    path = tmp_path / "empty"
    path.write_text("\n")
    result = cli("webhook", "add", HOOK, "--event", "task.failed", "--secret-file", str(path))
    assert result.returncode == 2 and "empty" in one_error(result)
    assert hook_requests(server) == []


def test_events_take_spaces_commas_and_repeats(cli, server, api_key):
    result = cli(
        "webhook",
        "add",
        HOOK,
        "--event",
        "task.created,task.running",
        "task.failed",
        "--event",
        "task.canceled",
        "-q",
    )
    assert result.returncode == 0, result.stderr
    [post] = hook_requests(server, "POST")
    assert post["json"]["events"] == [
        "task.created",
        "task.running",
        "task.failed",
        "task.canceled",
    ]
    listed = api_call(server, api_key, "GET", "/webhooks")[1]["data"]
    assert result.stdout == f"{listed[0]['id']}\n"


def test_list_get_delete_and_public_key(cli, server, api_key):
    first, second = made(server, api_key, HOOK + "/1"), made(server, api_key, HOOK + "/2")
    assert cli("webhook", "list", "-q").stdout.split() == [first, second]
    assert [h["id"] for h in cli("webhook", "list").json()["data"]] == [first, second]
    assert cli("webhook", "get", first).json()["url"] == HOOK + "/1"
    refused = cli("webhook", "delete", first)
    assert refused.returncode == 2 and hook_requests(server, "DELETE") == []
    deleted = cli("webhook", "delete", first, second, "--yes")
    assert deleted.returncode == 0, deleted.stderr
    assert deleted.json() == [{"id": first, "deleted": True}, {"id": second, "deleted": True}]
    missing = cli("webhook", "get", first)
    assert missing.returncode == 4 and "webhook list" in one_error(missing)
    key = cli("webhook", "public-key", "-q").stdout
    assert key.startswith("-----BEGIN PUBLIC KEY-----") and key.rstrip().endswith("KEY-----")
    assert cli("webhook", "public-key").json()["algorithm"] == "ed25519"
