"""Reliability and security: faults, bad input, hangs, Ctrl-C, and the key never showing.

Everything runs against the local server (tests/fake_rebyte.py) over real sockets, with a
recognisable key. Every CLI run of this module is kept in CLI_RESULTS and every server in
SERVERS, so that the last test can audit them all for the key; each run is also checked
on the spot.
"""

from __future__ import annotations

import json
import logging
import os
import random
import re
import socket
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Callable, List, Optional

import fake_rebyte
import pytest
from cli_runner import ROOT, CliResult, cli_env, interrupt, run_cli, start_cli

if str(ROOT / "scripts") not in sys.path:
    sys.path.insert(0, str(ROOT / "scripts"))

import rebyte_client as rc  # noqa: E402

KEY = "rbk_SECRET_canary_7f3a9"
WRONG_KEY = "rbk_WRONG_canary_0000"
SECRETS = (KEY, KEY[4:], WRONG_KEY, WRONG_KEY[4:])  # the whole keys and their secret parts

CLI_RESULTS: List[CliResult] = []  # every CLI run of this module, audited at the end
SERVERS: list = []  # every server of this module, audited at the end
CLIENT_ERRORS: List[BaseException] = []  # every error the client raised here

# Routes where a retry is safe: faults of every kind may hit them.
SAFE_ROUTES = [
    ("GET", r"/v1/tasks(/.*)?"),
    ("DELETE", r"/v1/tasks/[^/]+"),
    ("PATCH", r"/v1/tasks/[^/]+/visibility"),
    ("POST", r"/v1/tasks/[^/]+/cancel"),
    ("POST", r"/v1/files"),
    ("PUT", r"/upload/.*"),
]
TRANSIENT_FAULTS = ("429", "502-html", "503-html", "reset", "500", "503")
CREATE_ROUTE = r"/v1/tasks"
PROMPTS_ROUTE = r"/v1/tasks/[^/]+/prompts"


# --------------------------------------------------------------------------- helpers


def leaks(text: str) -> List[str]:
    return [secret for secret in SECRETS if secret in (text or "")]


def assert_no_key(*texts: str) -> None:
    for text in texts:
        assert not leaks(text), f"the key shows in: {text[:300]!r}"


def cli(
    *args: str,
    base_url: Optional[str] = None,
    api_key: Optional[str] = KEY,
    env=None,
    timeout: float = 60,
    **extra_env: str,
) -> CliResult:
    """run_cli with the canary key; the result is checked for the key and kept for the audit."""
    if env is None:
        env = cli_env(base_url, api_key, **extra_env)
    result = run_cli(*args, env=env, timeout=timeout)
    CLI_RESULTS.append(result)
    assert_no_key(result.stdout, result.stderr)
    return result


def keep(result: CliResult) -> CliResult:
    CLI_RESULTS.append(result)
    assert_no_key(result.stdout, result.stderr)
    return result


def assert_one_error_line(result: CliResult, code: int, says: Optional[str] = None) -> str:
    """The exit code, and exactly one short error line on stderr with no traceback."""
    assert "Traceback" not in result.stderr, result.stderr
    assert result.returncode == code, (result.args, result.returncode, result.stderr)
    lines = result.stderr_lines
    assert len(lines) == 1, f"expected one line on stderr, got {lines!r}"
    line = lines[0]
    assert line.startswith("rebyte_cli.py: error: "), line
    assert len(line) < 700, line
    assert "<html" not in line.lower() and "<!doctype" not in line.lower(), line
    if says is not None:
        assert re.search(says, line, re.IGNORECASE), f"{says!r} not in {line!r}"
    return line


def client_for(server, **kwargs) -> rc.RebyteClient:
    kwargs.setdefault("max_retries", 6)
    client = rc.RebyteClient(KEY, base_url=server.base_url, **kwargs)
    client._sleep = lambda seconds: time.sleep(min(seconds, 0.02))  # real policy, short pauses
    assert_no_key(repr(client))
    return client


def raised(callable_, *args, **kwargs) -> BaseException:
    """The error a client call raises (kept for the audit); fails if it returns."""
    try:
        callable_(*args, **kwargs)
    except rc.RebyteError as error:
        CLIENT_ERRORS.append(error)
        assert_no_key(str(error), repr(error))
        return error
    raise AssertionError(f"{callable_.__name__} did not raise")


def wait_until(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.02)


@pytest.fixture
def server(make_fake_rebyte):
    """A fresh local server with the canary key and short (0.1 s) prompts."""
    started = make_fake_rebyte(key=KEY, prompt_duration=0.1)
    SERVERS.append(started)
    return started


@pytest.fixture
def make_server(make_fake_rebyte):
    def make(**knobs):
        knobs.setdefault("key", KEY)
        started = make_fake_rebyte(**knobs)
        SERVERS.append(started)
        return started

    return make


def make_task(server, prompt: str = "Say hello") -> dict:
    with rc.RebyteClient(KEY, base_url=server.base_url) as client:
        return client.tasks.create(prompt)


# ------------------------------------------------------ a session under transient faults


def test_session_of_100_calls_under_30_percent_faults_creates_nothing_twice(
    make_server, tmp_path, caplog
):
    caplog.set_level(logging.DEBUG, logger="rebyte")
    server = make_server(
        prompt_duration=0.1,
        seed=20240611,
        fault_rate=0.33,
        fault_kinds=TRANSIENT_FAULTS,
        fault_routes=SAFE_ROUTES,
        retry_after="0",
    )
    client = client_for(server, max_retries=8)
    plan = random.Random(7)
    # One scripted fault of each kind first, so that every kind shows whatever the timing.
    for method, route, fault in (
        ("PUT", r"/upload/.*", "reset"),
        ("POST", r"/v1/files", "429"),
        ("GET", r"/v1/tasks/[^/]+", "502-html"),
        ("PATCH", r"/v1/tasks/[^/]+/visibility", "503-html"),
        ("DELETE", r"/v1/tasks/[^/]+", "reset"),
    ):
        server.inject(method, route, fault)
    calls = creates = follow_ups = 0
    created_ids, prompt_ids, deleted = [], [], []

    def maybe_429(route: str) -> None:
        """Only 429 on a creating POST: the one fault after which a retry is safe there."""
        if plan.random() < 0.4:
            server.inject("POST", route, "429", count=plan.choice((1, 2)))

    for number in range(12):
        files = None
        if number % 2 == 0:
            path = tmp_path / f"data-{number}.csv"
            path.write_text("a,b\n1,2\n" * (number + 1))
            files = [client.files.upload(path)]
            calls += 1
            assert server.file_info(files[0]["id"])["uploaded"]
        maybe_429(CREATE_ROUTE)
        running = "[duration=5] " if number % 4 == 1 else ""
        task = client.tasks.create(f"{running}Task number {number}", files=files)
        calls, creates = calls + 1, creates + 1
        created_ids.append(task["id"])
        assert task["url"].endswith(task["id"])

        if running:
            assert client.tasks.cancel(task["id"])["status"] == "canceled"
            calls += 1
        got = client.tasks.get(task["id"])
        calls += 1
        assert got["id"] == task["id"]
        shared = client.tasks.set_visibility(task["id"], "public")
        calls += 1
        assert shared["shareUrl"]

        maybe_429(PROMPTS_ROUTE)
        prompt_id = client.tasks.follow_up(task["id"], f"Follow-up {number}")["promptId"]
        calls, follow_ups = calls + 1, follow_ups + 1
        prompt_ids.append(prompt_id)
        done = client.tasks.wait(task["id"], prompt_id=prompt_id, timeout=30, poll_interval=0.05)
        calls += 1
        assert [p["status"] for p in done["prompts"] if p["id"] == prompt_id] == ["succeeded"]
        assert client.tasks.result(task["id"]) == f"Result for: Follow-up {number}"
        calls += 1
        if number % 6 == 0:
            events = list(client.tasks.events(task["id"], reconnect_delay=0.01))
            calls += 1
            assert events[-1]["eventType"] == "done"
        page = client.tasks.list(limit=5)
        calls += 1
        assert page["data"][0]["id"] == task["id"]
        if number % 2 == 1:
            client.tasks.delete(task["id"])
            calls += 1
            deleted.append(task["id"])
    assert calls >= 90

    every = list(client.tasks.iter(page_size=2))
    calls += 1
    assert sorted(t["id"] for t in every) == sorted(set(created_ids) - set(deleted))

    # Nothing was created twice: the server's own counters, and its request log.
    assert server.tasks_created == creates == len(set(created_ids))
    assert server.prompts_created == follow_ups == len(set(prompt_ids))
    processed_creates = [e for e in server.requests("POST", CREATE_ROUTE) if e["fault"] is None]
    processed_prompts = [e for e in server.requests("POST", PROMPTS_ROUTE) if e["fault"] is None]
    assert len(processed_creates) == creates and len(processed_prompts) == follow_ups
    creating = server.requests("POST", CREATE_ROUTE) + server.requests("POST", PROMPTS_ROUTE)
    assert {e["fault"] for e in creating} <= {None, "429"}
    assert any(e["fault"] == "429" for e in creating)

    # The faults really happened, about 30% of all requests, of every kind.
    log = server.requests(listener=None)
    faulted = [e for e in log if e["fault"]]
    assert len(faulted) >= 0.2 * len(log), (len(faulted), len(log))
    assert {e["fault"] for e in faulted} >= {"429", "502-html", "503-html", "reset"}
    assert any(e["fault"] for e in server.requests("PUT", r"/upload/.*", listener="upload"))
    assert "attempt 2" in caplog.text  # retries show in the log, the key does not
    assert_no_key(caplog.text)
    client.close()


def test_cli_commands_ride_out_transient_faults(make_server, tmp_path):
    server = make_server(
        prompt_duration=0.1,
        seed=3,
        fault_rate=0.3,
        fault_kinds=TRANSIENT_FAULTS,
        fault_routes=SAFE_ROUTES,
        retry_after="0",
    )
    env = cli_env(server.base_url, KEY)
    retries = ("--max-retries", "8")
    upload_path = tmp_path / "notes.txt"
    upload_path.write_text("some notes\n")

    server.inject("POST", CREATE_ROUTE, "429", count=2)
    created = cli(
        "create", "-p", "Hello under faults", "--file", str(upload_path), *retries, env=env
    )
    assert created.returncode == 0, created.stderr
    task_id = created.json()["id"]
    server.inject("POST", PROMPTS_ROUTE, "429")
    results = [created]
    results.append(
        cli(
            "follow-up",
            task_id,
            "-p",
            "And again",
            "--wait",
            "--interval",
            "0.1",
            *retries,
            env=env,
        )
    )
    side_by_side = (
        ["get", task_id],
        ["list", "--limit", "3"],
        ["-v", "share", task_id],
        ["upload", str(upload_path)],
        ["wait", task_id, "--interval", "0.1"],
        ["result", task_id],
    )
    with ThreadPoolExecutor(max_workers=len(side_by_side)) as pool:
        results += pool.map(lambda args: cli(*args, *retries, env=env), side_by_side)
    results.append(cli("delete", task_id, "--yes", *retries, env=env))
    for result in results:
        assert result.returncode == 0, (result.args, result.stderr)
        assert "Traceback" not in result.stderr
    assert server.tasks_created == 1 and server.prompts_created == 1
    assert any(e["fault"] for e in server.requests(listener=None))


# ------------------------------------------------------ a create whose outcome is unknown

UNKNOWN_OUTCOMES = [
    ("502", True),  # the server created the task, then a proxy answered 502
    ("502-html", True),
    ("503-html", True),
    ("reset", True),  # created, then the connection was reset
    ("reset", False),  # read, then reset: the client cannot tell the difference
    ("500", False),
    ("truncated-json", True),
    ("short-body", True),
]


@pytest.mark.parametrize("fault,after", UNKNOWN_OUTCOMES)
def test_create_with_unknown_outcome_is_sent_once_and_says_how_to_check(server, fault, after):
    server.inject("POST", CREATE_ROUTE, fault, after=after)
    client = client_for(server, max_retries=6)
    error = raised(client.tasks.create, "Build the thing")
    assert isinstance(error, rc.OutcomeUnknownError), repr(error)
    assert "may have been created" in str(error) and "list" in str(error)
    assert len(server.requests("POST", CREATE_ROUTE)) == 1
    assert server.tasks_created == (1 if after else 0)


@pytest.mark.parametrize("fault,after", [("502", True), ("reset", True), ("503-html", False)])
def test_follow_up_with_unknown_outcome_is_sent_once(server, fault, after):
    task = make_task(server)
    server.inject("POST", PROMPTS_ROUTE, fault, after=after)
    client = client_for(server, max_retries=6)
    error = raised(client.tasks.follow_up, task["id"], "One more thing")
    assert isinstance(error, rc.OutcomeUnknownError), repr(error)
    assert "may have been sent" in str(error) and task["id"] in str(error)
    assert len(server.requests("POST", PROMPTS_ROUTE)) == 1
    assert server.prompts_created == (1 if after else 0)


@pytest.mark.parametrize("fault", ["502", "reset"])
def test_cli_create_with_unknown_outcome_exits_6_and_says_how_to_check(server, fault):
    server.inject("POST", CREATE_ROUTE, fault, after=True)
    result = cli(
        "create",
        "-p",
        "Build the thing",
        "--max-retries",
        "6",
        "--no-progress",
        base_url=server.base_url,
    )
    line = assert_one_error_line(result, 6, says="may have been created")
    assert "rebyte_cli.py list" in line
    assert result.stdout == ""
    assert len(server.requests("POST", CREATE_ROUTE)) == 1
    assert server.tasks_created == 1  # it does exist, as the message warned
    assert not server.requests("DELETE")


def test_cli_follow_up_with_unknown_outcome_exits_6(server):
    task = make_task(server)
    server.inject("POST", PROMPTS_ROUTE, "502-html", after=True)
    result = cli(
        "follow-up", task["id"], "-p", "More", "--max-retries", "6", base_url=server.base_url
    )
    assert_one_error_line(result, 6, says=f"may have been sent.*get {task['id']}")
    assert len(server.requests("POST", PROMPTS_ROUTE)) == 1 and server.prompts_created == 1


def test_cli_batch_create_with_unknown_outcome_is_not_retried(server, tmp_path):
    spec = tmp_path / "tasks.json"
    spec.write_text(json.dumps([{"prompt": "First"}]))
    server.inject("POST", CREATE_ROUTE, "reset", after=True)
    result = cli("batch", str(spec), "--max-retries", "6", base_url=server.base_url)
    assert result.returncode == 6 and "Traceback" not in result.stderr
    assert "may have been created" in result.stderr
    assert result.json_lines()[0]["stage"] == "error"
    assert len(server.requests("POST", CREATE_ROUTE)) == 1 and server.tasks_created == 1


# ------------------------------------------------------------- servers that never answer


class BlackHole:
    """A TCP server that accepts connections and never reads or answers."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.connections = []
        self.accepted_at = []
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.sock.getsockname()[1]}/v1"

    def first_contact(self) -> Optional[float]:
        return min(self.accepted_at, default=None)

    def _accept(self) -> None:
        while True:
            try:
                connection, _ = self.sock.accept()
            except OSError:
                return
            self.accepted_at.append(time.time())
            self.connections.append(connection)

    def close(self) -> None:
        self.sock.close()
        for connection in self.connections:
            connection.close()


def first_request(server) -> Optional[float]:
    return min((entry["time"] for entry in server.requests(listener=None)), default=None)


TIMEOUT = 1.0
SLACK = 2.0  # seconds allowed past --timeout: a last read, printing, exit


def every_command(upload: str, spec: str, task_id: str = "task-1") -> list:
    t = ("--timeout", f"{TIMEOUT:g}")
    return [
        (["create", "-p", "x", *t], 6, "may have been created"),
        (["create", "-p", "x", "--wait", *t], 6, "may have been created"),
        (["get", task_id, *t], 6, "no answer"),
        (["get", task_id, "--max-retries", "5", *t], 6, "no answer"),
        (["list", *t], 6, "no answer"),
        (["list", "--all", *t], 6, "no answer"),
        (["follow-up", task_id, "-p", "x", *t], 6, "may have been sent"),
        (["wait", task_id, "--timeout", f"{TIMEOUT:g}"], 7, f"timed out after {TIMEOUT:g}s"),
        (["watch", task_id, *t], 6, "no answer"),
        (["result", task_id, *t], 6, "no answer"),
        (["cancel", task_id, *t], 6, "no answer"),
        (["share", task_id, *t], 6, "no answer"),
        (["upload", upload, *t], 6, "no answer"),
        (["delete", task_id, "--yes", *t], 6, "no answer"),
        (["batch", spec, *t], 6, "may have been created"),
    ]


def check_all_time_out(commands, targets, first_contact) -> None:
    """Run each command against its own target, all in parallel; each must end in time.

    The time counted runs from the first request the target saw to the exit, so that
    interpreters starting slowly on a busy machine do not count against the CLI.
    """

    def one(job):
        args, target = job
        result = keep(run_cli(*args, env=cli_env(target.base_url, KEY), timeout=30))
        return result, time.time()

    with ThreadPoolExecutor(max_workers=len(commands)) as pool:
        outcomes = list(pool.map(one, [(c[0], t) for c, t in zip(commands, targets)]))
    slow = []
    for (args, code, says), target, (result, ended) in zip(commands, targets, outcomes):
        assert "Traceback" not in result.stderr, result.stderr
        assert result.returncode == code, (args, result.returncode, result.stderr)
        assert re.search(says, result.stderr), (args, result.stderr)
        # A progress line and the error; a create repeated from this test's record also warns.
        lines = [line for line in result.stderr_lines if ": warning: " not in line]
        assert len(lines) <= 2, result.stderr
        contacted = first_contact(target)
        assert contacted is not None, f"{args} never reached the server"
        if ended - contacted > TIMEOUT + SLACK:
            slow.append((" ".join(args[:2]), round(ended - contacted, 2)))
    assert not slow, f"took longer than {TIMEOUT + SLACK}s after the first request: {slow}"


@pytest.fixture
def upload_and_spec(tmp_path):
    upload = tmp_path / "small.txt"
    upload.write_text("tiny\n")
    spec = tmp_path / "batch.json"
    spec.write_text(json.dumps([{"prompt": "one"}, {"prompt": "two"}]))
    return str(upload), str(spec)


def test_every_command_times_out_on_a_server_that_stalls(make_server, upload_and_spec):
    commands = every_command(*upload_and_spec)
    servers = [make_server() for _ in commands]
    for server in servers:
        server.inject("*", r".*", "stall", count=10_000)
    check_all_time_out(commands, servers, first_request)
    assert sum(server.tasks_created for server in servers) == 0  # stalled: never processed


def test_upload_times_out_when_the_storage_host_stalls(make_server, upload_and_spec):
    upload, _ = upload_and_spec
    commands = [
        (["upload", upload, "--timeout", f"{TIMEOUT:g}"], 6, "no answer"),
        (["create", "-p", "x", "--file", upload, "--timeout", f"{TIMEOUT:g}"], 6, "no answer"),
    ]
    servers = [make_server() for _ in commands]
    for server in servers:
        server.inject("PUT", r"/upload/.*", "stall", count=100)
    check_all_time_out(commands, servers, first_request)
    for server in servers:
        assert server.requests("PUT", r"/upload/.*", listener="upload")
        assert server.tasks_created == 0


def test_every_command_times_out_on_a_socket_that_never_reads(upload_and_spec):
    commands = every_command(*upload_and_spec)
    holes = [BlackHole() for _ in commands]
    try:
        check_all_time_out(commands, holes, BlackHole.first_contact)
    finally:
        for hole in holes:
            hole.close()


# ------------------------------------------------------------------ the bad-input battery


@dataclass
class Ctx:
    server: object
    tmp: object
    env: dict = field(default_factory=dict)

    def file(self, name: str, content: bytes = b"x") -> str:
        path = self.tmp / name
        path.write_bytes(content)
        return str(path)


@dataclass
class Case:
    name: str
    argv: Callable[[Ctx], list]
    code: int
    says: Optional[str] = None
    sends: bool = False  # does the CLI reach the server?
    env: Callable[[Ctx], dict] = None  # base_url and api_key overrides
    setup: Callable[[Ctx], None] = None
    skip_if: Callable[[Ctx], Optional[str]] = None


def unreadable(ctx: Ctx, name: str, directory: bool = False) -> str:
    path = ctx.tmp / name
    if directory:
        path.mkdir()
    else:
        path.write_text("secret")
    path.chmod(0)
    return str(path)


def readable_anyway(path_name: str):
    def check(ctx: Ctx) -> Optional[str]:
        path = ctx.tmp / path_name
        if os.access(path, os.R_OK):
            return "running as root: chmod 000 files stay readable"
        return None

    return check


def on_get(fault: str, count: int = 1):
    return lambda ctx: ctx.server.inject("GET", r"/v1/tasks/[^/]+", fault, count=count)


def env_with(base_url="server", api_key=KEY):
    def make(ctx: Ctx) -> dict:
        return {
            "base_url": ctx.server.base_url if base_url == "server" else base_url,
            "api_key": api_key,
        }

    return make


def batch_file(content: str):
    return lambda ctx: ["batch", ctx.file("spec.txt", content.encode())]


LONG_PROMPT = "y" * 100_001
BATTERY = [
    # keys: missing, empty, malformed, rejected
    Case(
        "key-missing",
        lambda c: ["list"],
        3,
        "no API key.*REBYTE_API_KEY",
        env=env_with(api_key=None),
    ),
    Case("key-empty", lambda c: ["list"], 3, "no API key", env=env_with(api_key="")),
    Case("key-whitespace", lambda c: ["list"], 3, "no API key", env=env_with(api_key="  \t ")),
    Case(
        "key-with-space",
        lambda c: ["get", "t1"],
        3,
        "spaces or control",
        env=env_with(api_key="rbk_SECRET canary"),
    ),
    Case(
        "key-rejected",
        lambda c: ["list"],
        3,
        "refused the key.*REBYTE_API_KEY",
        sends=True,
        env=env_with(api_key=WRONG_KEY),
    ),
    Case(
        "key-rejected-on-get",
        lambda c: ["get", "t1", "--max-retries", "5"],
        3,
        "refused the key",
        sends=True,
        env=env_with(api_key=WRONG_KEY),
    ),
    # plain http:// off loopback
    Case(
        "http-public-host",
        lambda c: ["list"],
        3,
        "refusing plain http://.*https://",
        env=env_with(base_url="http://api.rebyte.ai/v1"),
    ),
    Case(
        "http-private-ip",
        lambda c: ["get", "t1"],
        3,
        "refusing plain http://",
        env=env_with(base_url="http://10.0.0.7:8080/v1"),
    ),
    Case(
        "http-loopback-lookalike",
        lambda c: ["list"],
        3,
        "refusing plain http://",
        env=env_with(base_url="http://127.0.0.1.nip.io/v1"),
    ),
    Case(
        "http-ipv6",
        lambda c: ["list", "--base-url", "http://[2001:db8::1]/v1"],
        3,
        "refusing plain http://",
    ),
    # malformed base URLs
    Case(
        "url-not-a-url",
        lambda c: ["list"],
        3,
        "malformed base URL",
        env=env_with(base_url="not a url"),
    ),
    Case(
        "url-ftp",
        lambda c: ["list"],
        3,
        "malformed base URL",
        env=env_with(base_url="ftp://api.rebyte.ai/v1"),
    ),
    Case("url-no-host", lambda c: ["list", "--base-url", "https://"], 3, "malformed base URL"),
    Case(
        "url-bad-port",
        lambda c: ["list"],
        3,
        "malformed base URL",
        env=env_with(base_url="http://127.0.0.1:99999/v1"),
    ),
    Case(
        "url-query",
        lambda c: ["list"],
        3,
        "query",
        env=env_with(base_url="https://api.rebyte.ai/v1?debug=1"),
    ),
    Case(
        "url-key-as-password",
        lambda c: ["list"],
        3,
        "credentials",
        env=env_with(base_url=f"https://me:{KEY}@api.rebyte.ai/v1"),
    ),
    Case(
        "url-key-in-query",
        lambda c: ["list"],
        3,
        "query",
        env=env_with(base_url=f"https://api.rebyte.ai/v1?api_key={KEY}"),
    ),
    # task ids: unknown, path-like (escaped as one segment: 404), impossible (refused locally)
    Case("id-unknown", lambda c: ["get", "no-such-task"], 4, "not found.*list", sends=True),
    Case("id-dotdot-files", lambda c: ["get", "../files"], 4, "not found", sends=True),
    Case("id-slash", lambda c: ["delete", "a/b", "--yes"], 4, "not found", sends=True),
    Case("id-up-two", lambda c: ["share", "../../v1/tasks"], 4, "not found", sends=True),
    Case("id-encoded-dots", lambda c: ["result", "%2e%2e%2ffiles"], 4, "not found", sends=True),
    Case("id-query", lambda c: ["cancel", "?limit=1"], 4, "not found", sends=True),
    Case("id-unicode", lambda c: ["get", "tâche-日本-✓"], 4, "not found", sends=True),
    Case("id-dotdot", lambda c: ["get", ".."], 2, "not valid"),
    Case("id-empty", lambda c: ["get", ""], 2, "empty"),
    Case("id-space", lambda c: ["get", "a b"], 2, "spaces"),
    Case("id-tab-follow-up", lambda c: ["follow-up", "a\tb", "-p", "hi"], 2, "spaces"),
    Case("id-too-long", lambda c: ["delete", "x" * 129, "--yes"], 2, "longer than 128"),
    Case("id-too-long-wait", lambda c: ["wait", "x" * 200], 2, "longer than 128"),
    # prompts
    Case("prompt-empty", lambda c: ["create", "-p", ""], 2, "prompt is empty"),
    Case("prompt-whitespace", lambda c: ["create", "-p", " \n\t  "], 2, "prompt is empty"),
    Case(
        "prompt-whitespace-follow-up",
        lambda c: ["follow-up", "t1", "-p", "   "],
        2,
        "prompt is empty",
    ),
    Case(
        "prompt-too-long",
        lambda c: ["create", "--prompt-file", c.file("long.txt", LONG_PROMPT.encode())],
        2,
        "100,001 characters.*100,000",
    ),
    Case("prompt-missing-option", lambda c: ["create"], 2, "--prompt"),
    Case(
        "prompt-file-missing",
        lambda c: ["create", "--prompt-file", str(c.tmp / "nope.txt")],
        2,
        "no such prompt file",
    ),
    Case(
        "prompt-file-directory", lambda c: ["create", "--prompt-file", str(c.tmp)], 2, "directory"
    ),
    Case(
        "prompt-file-unreadable",
        lambda c: ["create", "--prompt-file", unreadable(c, "locked.txt")],
        2,
        "cannot read",
        skip_if=readable_anyway("locked.txt"),
    ),
    Case(
        "prompt-file-not-utf8",
        lambda c: [
            "follow-up",
            "t1",
            "--prompt-file",
            c.file("latin1.txt", "café\xff".encode("latin-1")),
        ],
        2,
        "not UTF-8",
    ),
    # upload paths
    Case("upload-missing", lambda c: ["upload", str(c.tmp / "missing.csv")], 2, "no such file"),
    Case("upload-directory", lambda c: ["upload", str(c.tmp)], 2, "not a regular file"),
    Case(
        "upload-unreadable",
        lambda c: ["upload", unreadable(c, "locked.bin")],
        2,
        "not readable",
        skip_if=readable_anyway("locked.bin"),
    ),
    Case(
        "upload-name-too-long",
        lambda c: ["upload", str(c.tmp / ("n" * 252 + ".csv"))],
        2,
        "256 characters.*255",
    ),
    Case(
        "upload-one-good-one-missing",
        lambda c: ["upload", c.file("ok.txt"), str(c.tmp / "gone.txt")],
        2,
        "no such file",
    ),
    Case(
        "create-file-missing",
        lambda c: ["create", "-p", "hi", "--file", str(c.tmp / "gone.txt")],
        2,
        "no such file",
    ),
    Case(
        "file-ref-malformed",
        lambda c: ["create", "-p", "hi", "--file-ref", "no-colon"],
        2,
        "ID:FILENAME",
    ),
    # visibility, limit, offset
    Case(
        "visibility-unknown",
        lambda c: ["share", "t1", "--visibility", "everyone"],
        2,
        "invalid choice",
    ),
    Case(
        "visibility-case", lambda c: ["share", "t1", "--visibility", "PUBLIC"], 2, "invalid choice"
    ),
    Case("limit-zero", lambda c: ["list", "--limit", "0"], 2, "from 1 to 100"),
    Case("limit-over", lambda c: ["list", "--limit", "101"], 2, "from 1 to 100"),
    Case("limit-word", lambda c: ["list", "--limit", "ten"], 2, "not a whole number"),
    Case("offset-negative", lambda c: ["list", "--offset", "-1"], 2, "at least 0"),
    Case("offset-fraction", lambda c: ["list", "--offset", "1.5"], 2, "not a whole number"),
    Case("timeout-zero", lambda c: ["get", "t1", "--timeout", "0"], 2, "more than 0"),
    # GitHub references
    Case(
        "github-words",
        lambda c: ["create", "-p", "hi", "--github-url", "not a repo"],
        2,
        "not a GitHub repository",
    ),
    Case(
        "github-other-host",
        lambda c: ["create", "-p", "hi", "--github-url", "https://gitlab.com/a/b"],
        2,
        "not a GitHub",
    ),
    Case(
        "github-dotdot",
        lambda c: ["create", "-p", "hi", "--github-url", "owner/.."],
        2,
        "not a GitHub",
    ),
    Case(
        "github-three-parts",
        lambda c: ["create", "-p", "hi", "--dry-run", "--github-url", "a/b/c"],
        2,
        "not a GitHub",
    ),
    # server answers that are not what the contract promises
    Case(
        "answer-html-200",
        lambda c: ["get", "t1"],
        6,
        "HTML page",
        sends=True,
        setup=on_get("html-200"),
    ),
    Case(
        "answer-empty-200",
        lambda c: ["get", "t1"],
        6,
        "empty body",
        sends=True,
        setup=on_get("empty-200"),
    ),
    Case(
        "answer-truncated-json",
        lambda c: ["get", "t1"],
        6,
        "expected JSON",
        sends=True,
        setup=on_get("truncated-json"),
    ),
    Case(
        "answer-wrong-shape",
        lambda c: ["get", "t1"],
        6,
        "lacks id",
        sends=True,
        setup=on_get("wrong-shape"),
    ),
    Case("answer-204", lambda c: ["get", "t1"], 6, "empty body", sends=True, setup=on_get("204")),
    Case(
        "answer-short-body",
        lambda c: ["get", "t1", "--max-retries", "1"],
        6,
        "cut off",
        sends=True,
        setup=on_get("short-body", count=5),
    ),
    Case(
        "answer-502-html",
        lambda c: ["get", "t1", "--max-retries", "0"],
        6,
        "502.*HTML page.*try again",
        sends=True,
        setup=on_get("502-html"),
    ),
    Case(
        "answer-list-wrong-shape",
        lambda c: ["list"],
        6,
        "lacks data",
        sends=True,
        setup=lambda c: c.server.inject("GET", r"/v1/tasks", "wrong-shape"),
    ),
    # expired upload URL: the storage host answers 403
    Case(
        "upload-url-expired",
        lambda c: ["upload", c.file("a.csv"), "--no-progress"],
        5,
        "storage host refused.*expired",
        sends=True,
        setup=lambda c: c.server.inject("PUT", r"/upload/.*", "403-expired"),
    ),
    Case(
        "upload-url-ttl-zero",
        lambda c: ["upload", c.file("b.csv"), "--no-progress"],
        5,
        "storage host refused.*expired",
        sends=True,
        setup=lambda c: c.server.configure(upload_url_ttl=0),
    ),
    # batch files
    Case("batch-invalid-json", batch_file('[{"prompt": "a"},'), 2, "not valid JSON"),
    Case(
        "batch-invalid-yaml",
        batch_file("- prompt: [unclosed\n  - x: y: z\n"),
        2,
        "not valid JSON, JSON Lines or YAML",
    ),
    Case("batch-no-prompt", batch_file('[{"skills": ["pdf"]}]'), 2, "no prompt"),
    Case(
        "batch-second-has-no-prompt",
        batch_file('[{"prompt": "ok"}, {"model": "lite"}]'),
        2,
        "#2 has no prompt",
    ),
    Case("batch-empty", batch_file(""), 2, "no task specs"),
    Case("batch-a-string", batch_file("just some text\n"), 2, "no task specs"),
    Case(
        "batch-bad-field",
        batch_file('[{"prompt": "ok", "promt": "typo"}]'),
        2,
        "unknown field 'promt'",
    ),
    # plain usage
    Case(
        "wait-prompt-id-two-tasks",
        lambda c: ["wait", "a", "b", "--prompt-id", "p"],
        2,
        "single TASK_ID",
    ),
    Case("unknown-command", lambda c: ["launch"], 2, "invalid choice"),
]


def route_of(path: str) -> str:
    match = re.fullmatch(r"/v1/tasks/[^/]+(/[a-z]+)?", path)
    return "task" + (match.group(1) or "") if match else path


@dataclass
class BatteryRun:
    result: Optional[CliResult] = None
    log: list = field(default_factory=list)
    created: int = 0
    skipped: Optional[str] = None
    error: Optional[BaseException] = None


@pytest.fixture(scope="module")
def battery(tmp_path_factory):
    """Every battery case run once, four at a time, each against its own server.

    Running them together keeps the module fast on two cores; each case is then judged
    by its own test below.
    """

    def run(case: Case) -> BatteryRun:
        server = fake_rebyte.FakeRebyte(KEY, prompt_duration=0.1).start()
        SERVERS.append(server)
        try:
            ctx = Ctx(server, tmp_path_factory.mktemp(case.name))
            if case.setup:
                case.setup(ctx)
            argv = case.argv(ctx)
            skipped = case.skip_if(ctx) if case.skip_if else None
            if skipped:
                return BatteryRun(skipped=skipped)
            target = case.env(ctx) if case.env else env_with()(ctx)
            result = run_cli(*argv, env=cli_env(target["base_url"], target["api_key"]))
            CLI_RESULTS.append(result)
            return BatteryRun(
                result,
                server.requests(listener=None),
                server.tasks_created + server.prompts_created,
            )
        except Exception as error:  # reported by the case's own test
            return BatteryRun(error=error)
        finally:
            server.stop()

    with ThreadPoolExecutor(max_workers=4) as pool:
        return dict(zip((case.name for case in BATTERY), pool.map(run, BATTERY)))


@pytest.mark.parametrize("case", BATTERY, ids=[case.name for case in BATTERY])
def test_bad_input_is_refused_with_one_line(case: Case, battery):
    run = battery[case.name]
    if run.error is not None:
        raise run.error
    if run.skipped:
        pytest.skip(run.skipped)
    result, log = run.result, run.log
    assert_no_key(result.stdout, result.stderr)
    assert_one_error_line(result, case.code, case.says)
    assert result.stdout == ""
    if not case.sends:
        assert log == [], f"nothing should be sent: {[(e['method'], e['path']) for e in log]}"
    else:
        assert log
    # A task id never reaches another route: every task path is /v1/tasks/{one segment}[/x].
    if case.name.startswith("id-"):
        for entry in log:
            assert route_of(entry["path"]).startswith("task"), entry["path"]
    assert run.created == 0


def test_the_battery_has_at_least_30_cases():
    assert len(BATTERY) >= 30 and len({case.name for case in BATTERY}) == len(BATTERY)


def test_path_like_ids_reach_the_server_as_one_segment(server):
    for task_id in ("../files", "a/b", "tâche-日本", "?x=1#y"):
        result = cli("get", task_id, base_url=server.base_url)
        assert result.returncode == 4, result.stderr
    paths = [e["path"] for e in server.requests(listener=None)]
    assert len(paths) == 4
    assert paths[0] == "/v1/tasks/..%2Ffiles" and paths[1] == "/v1/tasks/a%2Fb"
    assert not server.requests("GET", r"/v1/files.*") and not server.requests("GET", r"/v1/tasks")


def test_prompt_of_exactly_100000_characters_is_accepted(server, tmp_path):
    prompt = tmp_path / "prompt.txt"
    prompt.write_text("z" * 100_000)
    result = cli("create", "--prompt-file", str(prompt), base_url=server.base_url)
    assert result.returncode == 0, result.stderr
    assert len(server.requests("POST", CREATE_ROUTE)[0]["json"]["prompt"]) == 100_000


def test_upload_names_with_spaces_quotes_and_unicode_succeed(server, tmp_path):
    names = [
        'my "quoted" file\'s copy.txt',
        "  lots   of spaces .csv",
        "données — 日本語 ✓.md",
        "colon: and; semicolon & amp=1.txt",
    ]
    paths = []
    for index, name in enumerate(names):
        path = tmp_path / name
        path.write_text("line\n" * (index + 1))
        paths.append(str(path))
    result = cli("upload", *paths, base_url=server.base_url)
    assert result.returncode == 0, result.stderr
    refs = result.json()
    sent = [e["json"]["filename"] for e in server.requests("POST", r"/v1/files")]
    assert sent == names
    for name, ref in zip(names, refs):
        info = server.file_info(ref["id"])
        assert info["uploaded"] and info["size"] > 0
        stem = os.path.splitext(name)[0]
        assert ref["filename"].startswith(stem)
    # The references printed by `upload` attach as they are, colon in the name and all.
    ref_args = [arg for ref in refs for arg in ("--file-ref", f"{ref['id']}:{ref['filename']}")]
    created = cli("create", "-p", "Use the files", *ref_args, base_url=server.base_url)
    assert created.returncode == 0, created.stderr
    assert [f["filename"] for f in server.requests("POST", CREATE_ROUTE)[0]["json"]["files"]] == [
        ref["filename"] for ref in refs
    ]


def test_a_bad_batch_creates_nothing(server, tmp_path):
    spec = tmp_path / "tasks.yaml"
    spec.write_text("- prompt: first\n- prompt: second\n- skills: [pdf]\n")
    result = cli("batch", str(spec), base_url=server.base_url)
    assert_one_error_line(result, 2, "#3 has no prompt")
    assert server.requests(listener=None) == [] and server.tasks_created == 0


# --------------------------------------------------------------------- the key never shows


def test_verbose_dry_run_and_error_runs_never_show_the_key(server, tmp_path):
    task = make_task(server)
    upload = tmp_path / "report.csv"
    upload.write_text("x,y\n")
    server.inject("GET", r"/v1/tasks", "503-html")
    runs = [
        cli("-v", "get", task["id"], base_url=server.base_url),
        cli("-v", "list", "--max-retries", "2", base_url=server.base_url),
        cli("-v", "upload", str(upload), base_url=server.base_url),
        cli(
            "-v", "create", "-p", "hi", "--dry-run", "--file", str(upload), base_url=server.base_url
        ),
        cli("-v", "get", "missing-task", base_url=server.base_url),
        cli(
            "-v",
            "create",
            "-p",
            "Use the report",
            "--file",
            str(upload),
            "--wait",
            "--interval",
            "0.05",
            base_url=server.base_url,
        ),
    ]
    assert [r.returncode for r in runs] == [0, 0, 0, 0, 4, 0], [r.stderr for r in runs]
    assert "-> 503" in runs[1].stderr and "-> 200" in runs[1].stderr  # verbose logs requests
    dry = runs[3].json()
    assert dry["dryRun"] and "redacted" in dry["request"]["headers"]["API_KEY"]
    for result in runs:
        assert_no_key(result.stdout, result.stderr)
    # The storage host saw the uploads, and never the key.
    puts = server.requests("PUT", r"/upload/.*", listener="upload")
    assert len(puts) == 2
    for entry in puts:
        names = {name.lower() for name in entry["headers"]}
        assert not names & {"api_key", "api-key", "x-api-key", "authorization"}
        assert_no_key(json.dumps(entry["headers"]), json.dumps(entry["query"]))


def test_client_errors_and_logs_never_show_the_key(server, caplog, tmp_path):
    caplog.set_level(logging.DEBUG, logger="rebyte")
    client = client_for(server, max_retries=1)
    assert_no_key(repr(client), str(client.describe_request("GET", "/tasks")))
    server.inject("GET", r"/v1/tasks/[^/]+", "html-200")
    raised(client.tasks.get, "t1")
    server.inject("GET", r"/v1/tasks/[^/]+", "503-html", count=2)
    raised(client.tasks.get, "t1")
    raised(client.tasks.get, "missing")
    server.inject("PUT", r"/upload/.*", "403-expired")
    path = tmp_path / "f.txt"
    path.write_text("data")
    assert isinstance(raised(client.files.upload, path), rc.UploadError)
    server.inject("POST", CREATE_ROUTE, "502", after=True)
    raised(client.tasks.create, "x")
    wrong = rc.RebyteClient(WRONG_KEY, base_url=server.base_url)
    assert isinstance(raised(wrong.tasks.list), rc.AuthenticationError)
    for bad_url in (
        f"https://u:{KEY}@api.rebyte.ai/v1",
        f"https://api.rebyte.ai/v1?k={KEY}",
        f"https://u:{KEY}@api.rebyte.ai:bad/v1",
    ):
        raised(rc.RebyteClient, KEY, base_url=bad_url)
    assert "attempt 2" in caplog.text
    assert_no_key(caplog.text)
    for error in CLIENT_ERRORS:
        assert_no_key(str(error), repr(error), str(getattr(error, "cause", "")))


# ------------------------------------------------------------------------------ Ctrl-C


def test_ctrl_c_during_create_says_it_may_exist_and_leaves_it(make_server):
    server = make_server(provision_delay=1.5, prompt_duration=0.2)
    process = start_cli("create", "-p", "Slow to provision", env=cli_env(server.base_url, KEY))
    wait_until(lambda: server.requests("POST", CREATE_ROUTE))
    result = keep(interrupt(process, after=0.3))
    assert result.returncode == 130, result.stderr
    assert "Traceback" not in result.stderr
    assert "may exist anyway" in result.stderr and "rebyte_cli.py list" in result.stderr
    wait_until(lambda: server.tasks_created == 1)  # the server went on and created it
    tasks = rc.RebyteClient(KEY, base_url=server.base_url).tasks.list()["data"]
    assert len(tasks) == 1 and not server.requests("DELETE", r".*")


@pytest.mark.parametrize("command", ["upload", "create"])
def test_ctrl_c_during_upload_exits_130_and_creates_nothing(server, tmp_path, command):
    big = tmp_path / "big.bin"
    with open(big, "wb") as handle:
        handle.truncate(4 * 1024**3)  # sparse: 4 GiB that take no disk
    args = (
        ["upload", str(big)] if command == "upload" else ["create", "-p", "x", "--file", str(big)]
    )
    process = start_cli(*args, env=cli_env(server.base_url, KEY))
    try:
        wait_until(lambda: server.requests("PUT", r"/upload/.*", listener="upload"))
        result = keep(interrupt(process, after=0.3))
    finally:
        big.unlink()
    assert result.returncode == 130, result.stderr
    assert "Traceback" not in result.stderr
    assert result.stderr_lines[-1] == "rebyte_cli.py: error: interrupted"
    assert result.stdout == ""
    slot = server.requests("POST", r"/v1/files")[0]
    assert slot["status"] == 201
    file_id = server.requests("PUT", r"/upload/.*", listener="upload")[0]["path"].split("/")[-1]
    assert not server.file_info(file_id)["uploaded"]  # cut off in the middle
    assert server.tasks_created == 0 and not server.requests("POST", CREATE_ROUTE)


@pytest.mark.parametrize("command", ["wait", "create --wait", "follow-up --wait"])
def test_ctrl_c_during_wait_prints_the_task_and_leaves_it_running(server, command):
    task = make_task(server, "[duration=30] Long job")
    env = cli_env(server.base_url, KEY)
    if command == "wait":
        args = ["wait", task["id"]]
    elif command == "create --wait":
        args = ["create", "-p", "[duration=30] Another long job", "--wait"]
    else:
        args = ["follow-up", task["id"], "-p", "[duration=30] More", "--wait"]
    process = start_cli(*args, "--interval", "0.2", env=env)
    wait_until(lambda: server.requests("GET", r"/v1/tasks/[^/]+/events"))  # it is waiting
    result = keep(interrupt(process, after=0.1))
    assert result.returncode == 130, result.stderr
    assert "Traceback" not in result.stderr
    client = rc.RebyteClient(KEY, base_url=server.base_url)
    waited = client.tasks.list()["data"][0]["id"] if command == "create --wait" else task["id"]
    printed = json.loads(result.stdout.strip().splitlines()[-1])
    assert printed["interrupted"] is True
    assert printed["tasks"] == [{"id": waited, "url": f"https://app.rebyte.local/run/{waited}"}]
    assert f"task {waited} keeps running: https://app.rebyte.local/run/{waited}" in result.stderr
    assert not server.requests("DELETE", r".*") and not server.requests("POST", r".*/cancel")
    still = client.tasks.get(waited)
    assert still["status"] == "running"


# ------------------------------------------------------------------- the audit, at the end


def test_zz_no_run_of_this_module_showed_the_key():
    """Runs last: every CLI output, client error and request to the storage host."""
    if len(CLI_RESULTS) < 20:
        pytest.skip("audits the runs of the whole module; run the module, not this test alone")
    for result in CLI_RESULTS:
        assert not leaks(result.stdout) and not leaks(result.stderr), result.args
    for error in CLIENT_ERRORS:
        assert not leaks(str(error)) and not leaks(repr(error))
    uploads = 0
    for server in SERVERS:
        for entry in server.requests(listener="upload"):
            uploads += 1
            assert not leaks(json.dumps(entry["headers"])), entry["headers"]
            assert not leaks(json.dumps(entry["query"])) and not leaks(entry["path"])
        for entry in server.requests(listener="api"):
            assert not leaks(entry["path"]) and not leaks(json.dumps(entry["query"]))
    assert uploads >= 10
