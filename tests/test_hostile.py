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

import rebyte.files  # noqa: E402
import rebyte_client as rc  # noqa: E402
from rebyte import failures, streaming  # noqa: E402

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
        client_for(tls_url(server)).tasks.get("task-1")
    text = str(caught.value)
    assert "TLS" in text and "REQUESTS_CA_BUNDLE" in text and "SSL_CERT_FILE" in text


def test_tls_failure_exits_6_with_one_line(make_hostile_server):
    server = make_hostile_server("not-http")
    result = cli(tls_url(server), "get", "task-1")
    assert result.returncode == EXIT_NETWORK, result.stderr
    assert len(result.stderr_lines) == 1 and "TLS" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.fixture
def self_signed(tmp_path):
    """(certfile, keyfile) of a self-signed certificate for 127.0.0.1."""
    import shutil
    import subprocess

    if not shutil.which("openssl"):
        pytest.skip("needs the openssl command")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-keyout", str(key), "-out", str(cert), "-subj", "/CN=127.0.0.1",
         "-addext", "subjectAltName=IP:127.0.0.1"],
        check=True, capture_output=True, timeout=60,
    )
    return str(cert), str(key)


def test_a_self_signed_certificate_is_a_tls_error_until_its_ca_is_named(
    make_hostile_server, self_signed, monkeypatch
):
    cert, key = self_signed
    server = make_hostile_server("tls", certfile=cert, keyfile=key)
    for name in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "SSL_CERT_FILE"):
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(rc.APIConnectionError) as caught:
        client_for(server.base_url).tasks.get("task-1")
    assert "TLS" in str(caught.value) and "certificate verify failed" in str(caught.value)
    result = cli(server.base_url, "get", "task-1")
    assert result.returncode == EXIT_NETWORK and "REQUESTS_CA_BUNDLE" in result.stderr
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", cert)
    assert client_for(server.base_url).tasks.get("task-1")["id"] == "task-1"
    result = cli(server.base_url, "get", "task-1", SSL_CERT_FILE=cert)
    assert result.returncode == 0, result.stderr


def test_exception_walk_skips_string_reasons():
    import ssl

    error = ssl.SSLError(1, "[SSL: WRONG_VERSION_NUMBER] wrong version number")
    error.reason = "WRONG_VERSION_NUMBER"  # a string, as the ssl module sets it
    outer = OSError("wrapped")
    outer.__cause__ = error
    chain = list(failures._exception_chain(outer))
    assert all(isinstance(item, BaseException) for item in chain)
    assert error in chain


# ------------------------------------------------------------ answers that break the contract


@pytest.mark.parametrize("mode", ["nested-json", "nan", "prompts-not-list", "status-list"])
def test_a_task_answer_that_breaks_the_contract_is_malformed(make_hostile_server, mode):
    server = make_hostile_server(mode)
    with Timer() as timer, pytest.raises(rc.MalformedResponseError):
        client_for(server.base_url).tasks.get("task-1")
    assert timer.elapsed < 5


@pytest.mark.parametrize("mode", ["nested-json", "nan", "prompts-not-list", "status-list"])
def test_cli_get_of_a_broken_task_exits_6(make_hostile_server, mode):
    server = make_hostile_server(mode)
    result = cli(server.base_url, "get", "task-1")
    assert result.returncode == EXIT_NETWORK, result.stderr
    assert len(result.stderr_lines) == 1 and "Traceback" not in result.stderr
    assert "NaN" not in result.stdout


def test_wait_on_a_broken_task_says_so_at_its_deadline(make_hostile_server):
    server = make_hostile_server("status-list")
    with Timer() as timer, pytest.raises(rc.WaitTimeoutError) as caught:
        client_for(server.base_url).tasks.wait("task-1", timeout=0.4, poll_interval=0.08)
    assert isinstance(caught.value.last_error, rc.MalformedResponseError)
    assert timer.elapsed < 4.4


def test_an_event_with_a_list_for_seq_is_malformed(make_hostile_server):
    server = make_hostile_server("seq-list")
    with Timer() as timer, pytest.raises(rc.MalformedResponseError):
        list(client_for(server.base_url).tasks.events("task-1", timeout=10))
    assert timer.elapsed < 8


@pytest.mark.parametrize("mode", ["upload-url-int", "upload-url-object", "upload-url-file"])
def test_an_unusable_upload_url_is_malformed(make_hostile_server, mode, tmp_path):
    server = make_hostile_server(mode)
    path = tmp_path / "data.csv"
    path.write_text("a,b\n1,2\n")
    with pytest.raises(rc.MalformedResponseError) as caught:
        client_for(server.base_url).files.upload(path)
    assert "upload" in str(caught.value).lower()
    assert not [r for r in server.requests if r[0] == "PUT"]
    result = cli(server.base_url, "upload", str(path))
    assert result.returncode == EXIT_NETWORK, result.stderr
    assert "Traceback" not in result.stderr
    errors = [line for line in result.stderr_lines if "error" in line]
    assert errors == result.stderr_lines[-1:]


def test_a_create_answered_without_an_id_is_an_unknown_outcome(make_hostile_server):
    server = make_hostile_server("no-id")
    client = client_for(server.base_url)
    with pytest.raises(rc.OutcomeUnknownError) as caught:
        client.tasks.create("Say hello")
    assert caught.value.operation == "create_task"
    assert isinstance(caught.value.cause, rc.MalformedResponseError)
    assert "may have been created" in str(caught.value)
    with pytest.raises(rc.OutcomeUnknownError) as caught:
        client.tasks.follow_up("task-1", "Again")
    assert caught.value.operation == "follow_up"


def test_cli_create_answered_without_an_id_exits_6_with_the_hint(make_hostile_server):
    server = make_hostile_server("no-id")
    result = cli(server.base_url, "create", "-p", "Say hello")
    assert result.returncode == EXIT_NETWORK, result.stderr
    assert "may have been created" in result.stderr
    assert "list --limit 5" in result.stderr


# ------------------------------------------------------------------------ big and slow answers


def run_limited(args, env, *, memory: int, timeout: float):
    """Run the CLI with its address space capped at `memory` bytes."""
    import resource
    import subprocess

    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (memory, memory))

    return subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "rebyte_cli.py"), *args],
        env=env, capture_output=True, text=True, timeout=timeout, preexec_fn=limit,
    )


@pytest.mark.parametrize("mode", ["endless-json", "huge-length"])
def test_a_huge_answer_is_refused_at_the_cap(make_hostile_server, mode):
    server = make_hostile_server(mode, max_bytes=96 * 1024 * 1024)
    with Timer() as timer, pytest.raises(rc.MalformedResponseError) as caught:
        client_for(server.base_url).tasks.get("task-1")
    assert "larger than" in str(caught.value)
    assert timer.elapsed < 10


@pytest.mark.parametrize("mode", ["endless-json", "huge-length"])
def test_cli_memory_stays_bounded_on_a_huge_answer(make_hostile_server, mode):
    server = make_hostile_server(mode, max_bytes=1 << 30)
    with Timer() as timer:
        result = run_limited(["get", "task-1"], cli_env(server.base_url, KEY),
                             memory=768 * 1024 * 1024, timeout=60)
    assert result.returncode == EXIT_NETWORK, result.stderr
    assert "larger than" in result.stderr and "Traceback" not in result.stderr
    assert timer.elapsed < 30


def test_a_call_abandoned_at_its_deadline_closes_its_connection(make_hostile_server):
    server = make_hostile_server("json-trickle", trickle=0.1)  # 64 bytes: 6.4 s
    client = client_for(server.base_url, total_timeout=0.4)
    with Timer() as timer, pytest.raises(rc.APITimeoutError):
        client.tasks.get("task-1")
    assert timer.elapsed < 2.4
    give_up = time.monotonic() + 5
    while server._connections and time.monotonic() < give_up:
        time.sleep(0.1)
    assert not server._connections, "the abandoned request kept reading"


def test_an_upload_whose_answer_trickles_ends_after_the_read_timeout(
    make_hostile_server, tmp_path
):
    # A byte every 0.25 s, each well within the 0.5 s read timeout: only a limit on the
    # whole answer ends it (the 57 bytes would take 14 s).
    server = make_hostile_server("put-trickle", lifetime=40, trickle=0.25)
    path = tmp_path / "data.csv"
    path.write_bytes(b"x" * 300_000)
    with Timer() as timer, pytest.raises(rc.APITimeoutError):
        client_for(server.base_url, read_timeout=0.5).files.upload(path)
    assert timer.elapsed < 4.5
    with Timer() as timer:
        result = cli(server.base_url, "upload", str(path), REBYTE_READ_TIMEOUT="0.5",
                     REBYTE_MAX_RETRIES="0")
    assert result.returncode == EXIT_NETWORK, result.stderr
    assert timer.elapsed < 8.5


# ---------------------------------------------------------------------------- event streams


EXIT_WAIT_TIMEOUT = 7
# The streams below keep sending within every read timeout (sse-no-blank a line every
# 0.05 s, sse-trickle a byte every STREAM_TRICKLE s): only the deadline can end the wait.
# Deadlines are 0.5 s; each bound keeps the slack it had over the 2 s deadline used before.
STREAM_TRICKLE = 0.1


@pytest.mark.parametrize("mode", ["sse-trickle", "sse-no-blank"])
def test_iter_events_ends_at_its_deadline_whatever_the_stream_does(make_hostile_server, mode):
    server = make_hostile_server(mode, lifetime=20, trickle=STREAM_TRICKLE)
    with Timer() as timer, pytest.raises(rc.WaitTimeoutError):
        for _ in client_for(server.base_url).tasks.events("task-1", timeout=0.5):
            pass
    assert timer.elapsed < 2.5


@pytest.mark.parametrize("mode", ["sse-trickle", "sse-no-blank"])
def test_wait_with_events_ends_at_its_deadline(make_hostile_server, mode):
    server = make_hostile_server(mode, lifetime=20, trickle=STREAM_TRICKLE)
    client = client_for(server.base_url)
    with Timer() as timer, pytest.raises(rc.WaitTimeoutError):
        client.tasks.wait("task-1", timeout=0.5, poll_interval=0.125, use_events=True)
    assert timer.elapsed < 4.5


@pytest.mark.parametrize("mode", ["sse-trickle", "sse-no-blank"])
def test_cli_watch_ends_at_its_timeout(make_hostile_server, mode):
    server = make_hostile_server(mode, lifetime=30, trickle=STREAM_TRICKLE)
    with Timer() as timer:
        result = cli(server.base_url, "watch", "task-1", "--wait-timeout", "0.5")
    assert result.returncode == EXIT_WAIT_TIMEOUT, result.stderr
    assert timer.elapsed < 10.5


def test_a_4_mib_event_line_is_read_quickly(make_hostile_server):
    server = make_hostile_server("sse-huge-line")
    with Timer() as timer:
        events = list(client_for(server.base_url).tasks.events("task-1", timeout=20))
    assert timer.elapsed < 3
    assert len(events[0]["payload"]["text"]) == 4 * 1024 * 1024
    assert events[-1]["eventType"] == "done"


def test_the_line_splitter_is_linear():
    size = 1536 * 1024  # a quadratic splitter takes 10 s here
    data = b"data: " + b"x" * size + b"\n\n"
    pieces = (data[i:i + 1] for i in range(len(data)))  # the worst case: a byte at a time
    # The work of this thread (its CPU time), not the wall clock: the other test files run
    # beside this one and would count their share of the cores against the splitter.
    started = time.thread_time()
    lines = [line for line in streaming._sse_lines(pieces) if line is not None]
    assert time.thread_time() - started < 4
    assert len(lines[0]) == size + 6 and lines[1] == ""


def test_an_event_over_the_size_cap_is_malformed(make_hostile_server, monkeypatch):
    monkeypatch.setattr(streaming, "MAX_EVENT_BYTES", 1024 * 1024)
    server = make_hostile_server("sse-huge-line")
    with Timer() as timer, pytest.raises(rc.MalformedResponseError) as caught:
        list(client_for(server.base_url).tasks.events("task-1", timeout=20))
    assert "larger than" in str(caught.value)
    assert timer.elapsed < 5


# ------------------------------------------------------------------------ lists that never end


def test_iter_tasks_stops_with_an_error_when_pages_never_end(make_hostile_server):
    server = make_hostile_server("endless-pages")
    seen = 0
    with Timer() as timer, pytest.raises(rc.MalformedResponseError) as caught:
        for _ in client_for(server.base_url).tasks.iter():
            seen += 1
    assert "never ends" in str(caught.value)
    assert seen <= 200 + rc.LIST_SLACK + 100
    assert timer.elapsed < 20


def test_cli_list_all_stops_when_pages_never_end(make_hostile_server):
    server = make_hostile_server("endless-pages")
    result = cli(server.base_url, "list", "--all")
    assert result.returncode == EXIT_NETWORK, result.stderr[-500:]
    assert "never ends" in result.stderr


# -------------------------------------------------------------------------------- secrets


def no_proxy_env(monkeypatch) -> None:
    for name in ("NO_PROXY", "no_proxy", "HTTP_PROXY", "http_proxy", "HTTPS_PROXY",
                 "https_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(name, raising=False)


def test_loopback_never_goes_through_the_environments_proxy(make_hostile_server, monkeypatch):
    proxy = make_hostile_server("echo-error")
    server = make_hostile_server("events-no-key")  # any mode with a plain GET /tasks/{id}
    no_proxy_env(monkeypatch)
    for name in ("HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.setenv(name, proxy.origin)
    task = client_for(server.base_url).tasks.get("task-1")
    assert task["id"] == "task-1"
    assert proxy.requests == []
    env = cli_env(server.base_url, KEY, HTTP_PROXY=proxy.origin, http_proxy=proxy.origin,
                  ALL_PROXY=proxy.origin, NO_PROXY="", no_proxy="")
    result = run_cli("get", "task-1", env=env)
    assert result.returncode == 0, result.stderr
    assert proxy.requests == []


def test_https_proxy_still_applies_to_a_remote_api(monkeypatch):
    no_proxy_env(monkeypatch)
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.corp.test:3128")
    client = rc.RebyteClient(KEY, base_url="https://api.rebyte.ai/v1")
    assert client._proxies_for("https://api.rebyte.ai/v1/tasks")["https"] == (
        "http://proxy.corp.test:3128")
    assert client._proxies_for("http://127.0.0.1:9/v1/tasks") == {}
    monkeypatch.setenv("NO_PROXY", "rebyte.ai")
    assert not client._proxies_for("https://api.rebyte.ai/v1/tasks")


def test_netrc_credentials_are_never_sent(make_hostile_server, monkeypatch, tmp_path):
    server = make_hostile_server("events-no-key")
    netrc = tmp_path / ".netrc"
    netrc.write_text("machine 127.0.0.1 login someone password netrc-secret-771\n")
    netrc.chmod(0o600)
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("NETRC", str(netrc))
    data = tmp_path / "data.csv"
    data.write_text("a\n")
    client = client_for(server.base_url)
    client.tasks.get("task-1")
    client.files.upload(data)
    result = run_cli("upload", str(data), env=cli_env(server.base_url, KEY, HOME=str(tmp_path),
                                                      NETRC=str(netrc)))
    assert result.returncode == 0, result.stderr
    assert {method for method, _, _ in server.requests} >= {"GET", "POST", "PUT"}
    for _, _, headers in server.requests:
        assert "authorization" not in headers


@pytest.mark.parametrize("echo", [KEY, KEY[4:], f"x{KEY}y"])
def test_the_key_is_scrubbed_from_an_errors_code_and_request_id(make_hostile_server, echo):
    server = make_hostile_server("echo-error", echo=echo)
    with pytest.raises(rc.ValidationError) as caught:
        client_for(server.base_url).tasks.get("task-1")
    error = caught.value
    for part in SECRET_PARTS:
        assert part not in f"{error} {error.code} {error.request_id} {error.message}"
    result = cli(server.base_url, "get", "task-1")  # cli() checks the output for the key
    assert result.returncode != 0


@pytest.mark.parametrize("echo", [KEY, KEY[4:]])
def test_the_key_is_scrubbed_from_a_redirects_location(make_hostile_server, echo):
    server = make_hostile_server("redirect", echo=echo)
    with pytest.raises(rc.APIError) as caught:
        client_for(server.base_url).tasks.get("task-1")
    for part in SECRET_PARTS:
        assert part not in str(caught.value)
    result = cli(server.base_url, "get", "task-1")
    assert result.returncode != 0


# ---------------------------------------------------------------------------- meaning


def test_a_base_url_without_v1_is_named_as_the_cause(make_fake_rebyte):
    server = make_fake_rebyte(key=KEY)
    origin = server.base_url[: -len("/v1")]
    with pytest.raises(rc.NotFoundError) as caught:
        client_for(origin).tasks.list()
    assert caught.value.resource is None
    result = cli(origin, "list")
    assert result.returncode == 4, result.stderr
    assert "check --base-url" in result.stderr and "deleted" not in result.stderr


def test_events_without_seq_or_event_key_are_all_kept(make_hostile_server):
    server = make_hostile_server("events-no-key")
    events = list(client_for(server.base_url).tasks.events("task-1", timeout=10))
    assert [e["eventType"] for e in events] == ["text", "text", "text", "done"]
    assert [e["payload"]["text"] for e in events[:3]] == ["one", "two", "three"]


def test_watch_json_keeps_events_without_seq_or_event_key(make_hostile_server):
    server = make_hostile_server("events-no-key")
    result = cli(server.base_url, "watch", "task-1", "--json", "--wait-timeout", "10")
    assert result.returncode == 0, result.stderr
    texts = [line["payload"]["text"] for line in result.json_lines()
             if line.get("eventType") == "text"]
    assert texts == ["one", "two", "three"]


def test_watch_trusts_the_streams_done_over_a_lagging_read(make_hostile_server):
    server = make_hostile_server("done-disagrees")
    result = cli(server.base_url, "watch", "task-1", "--wait-timeout", "10")
    assert result.returncode == 0, result.stderr
    assert result.json()["status"] == "completed"


# ------------------------------------------------------------------- a hostile environment

EXIT_USAGE = 2
EXIT_AUTH = 3


@pytest.mark.parametrize(
    "key", [KEY + "\u200b", KEY[:8] + "\u2028" + KEY[8:], KEY + "\U0001f511", KEY + "\udcff"],
    ids=["zero-width-space", "line-separator", "emoji", "non-utf8-byte"],
)
def test_an_api_key_with_odd_characters_exits_3(make_hostile_server, key):
    server = make_hostile_server("events-no-key")
    result = run_cli("get", "task-1", env=cli_env(server.base_url, key), timeout=30)
    assert result.returncode == EXIT_AUTH, result.stderr
    assert len(result.stderr_lines) == 1 and "API key" in result.stderr
    assert server.requests == []
    with pytest.raises(rc.ConfigurationError):
        rc.RebyteClient(key, base_url=server.base_url)


def test_an_endless_prompt_file_is_refused_in_bounded_memory(make_hostile_server):
    server = make_hostile_server("events-no-key")
    env = cli_env(server.base_url, KEY)
    with Timer() as timer:
        result = run_limited(["create", "--prompt-file", "/dev/zero"], env,
                             memory=512 * 1024 * 1024, timeout=30)
    assert result.returncode == EXIT_USAGE, result.stderr
    assert "larger than" in result.stderr and "Traceback" not in result.stderr
    assert timer.elapsed < 15
    assert server.requests == []


def test_an_endless_prompt_on_stdin_is_refused(make_hostile_server):
    import subprocess

    server = make_hostile_server("events-no-key")
    with open("/dev/zero", "rb") as zero, Timer() as timer:
        completed = subprocess.run(
            [sys.executable, str(ROOT / "scripts" / "rebyte_cli.py"), "create",
             "--prompt-file", "-"], stdin=zero, capture_output=True, text=True,
            env=cli_env(server.base_url, KEY), timeout=30)
    assert completed.returncode == EXIT_USAGE, completed.stderr
    assert "larger than" in completed.stderr
    assert timer.elapsed < 15


def test_an_endless_batch_file_is_refused_in_bounded_memory(make_hostile_server):
    server = make_hostile_server("events-no-key")
    with Timer() as timer:
        result = run_limited(["batch", "/dev/zero"], cli_env(server.base_url, KEY),
                             memory=512 * 1024 * 1024, timeout=30)
    assert result.returncode == EXIT_USAGE, result.stderr
    assert "larger than" in result.stderr
    assert timer.elapsed < 15


YAML_BOMB = """\
- a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]
  b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]
  c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]
  d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]
  e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]
  f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]
  g: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]
  h: &h [*g,*g,*g,*g,*g,*g,*g,*g,*g]
  i: &i [*h,*h,*h,*h,*h,*h,*h,*h,*h]
- prompt: hi
  name: *i
"""


def test_a_yaml_alias_bomb_in_a_batch_file_is_refused(make_hostile_server, tmp_path):
    pytest.importorskip("yaml")
    server = make_hostile_server("events-no-key")
    path = tmp_path / "bomb.yaml"
    path.write_text(YAML_BOMB)
    with Timer() as timer:
        result = run_limited(["batch", str(path)], cli_env(server.base_url, KEY),
                             memory=512 * 1024 * 1024, timeout=60)
    assert result.returncode == EXIT_USAGE, result.stderr
    assert "YAML aliases are not allowed" in result.stderr
    assert timer.elapsed < 15
    assert server.requests == []


@pytest.mark.parametrize("value", ["1e300", "inf", "nan", "-1"])
def test_absurd_timeouts_are_refused(make_hostile_server, value):
    server = make_hostile_server("events-no-key")
    result = cli(server.base_url, "--timeout", value, "get", "task-1")
    assert result.returncode == EXIT_USAGE, result.stderr
    result = cli(server.base_url, "wait", "task-1", "--timeout", value)
    assert result.returncode == EXIT_USAGE, result.stderr
    for name in ("REBYTE_READ_TIMEOUT", "REBYTE_CONNECT_TIMEOUT", "REBYTE_CREATE_TIMEOUT"):
        result = cli(server.base_url, "get", "task-1", **{name: value})
        assert result.returncode == EXIT_AUTH, (name, result.stderr)
        assert name in result.stderr and len(result.stderr_lines) == 1
    assert server.requests == []


def test_a_file_that_shrinks_before_the_upload_is_a_clear_error(
    make_hostile_server, tmp_path, monkeypatch
):
    server = make_hostile_server("events-no-key")
    path = tmp_path / "data.csv"
    path.write_bytes(b"x" * 1000)
    real_check = rc.check_upload_path
    monkeypatch.setattr(rebyte.files, "check_upload_path", lambda p: (*real_check(p)[:2], 5000))
    with Timer() as timer, pytest.raises(rc.InputError) as caught:
        client_for(server.base_url).files.upload(path)
    assert "changed" in str(caught.value)
    assert timer.elapsed < 5


def test_a_file_deleted_before_the_upload_is_a_clear_error(
    make_hostile_server, tmp_path, monkeypatch
):
    server = make_hostile_server("events-no-key")
    path = tmp_path / "data.csv"
    path.write_bytes(b"x" * 1000)
    real_check = rc.check_upload_path

    def check_then_delete(p):
        checked = real_check(p)
        path.unlink()
        return checked

    monkeypatch.setattr(rebyte.files, "check_upload_path", check_then_delete)
    with pytest.raises(rc.InputError) as caught:
        client_for(server.base_url).files.upload(path)
    assert "data.csv" in str(caught.value)


def test_non_utf8_arguments_are_refused_like_a_non_utf8_file(make_hostile_server):
    server = make_hostile_server("events-no-key")
    for args in (["get", "task-\udcff"], ["create", "-p", "caf\udce9"]):
        result = run_cli(*args, env=cli_env(server.base_url, KEY), timeout=30)
        assert result.returncode == EXIT_USAGE, result.stderr
        assert "not UTF-8" in result.stderr and len(result.stderr_lines) == 1
    assert server.requests == []
    with pytest.raises(rc.InputError):
        rc.check_task_id("task-\udcff")
    with pytest.raises(rc.InputError):
        rc.check_prompt("caf\udce9")


def test_json_output_survives_an_ascii_stdout(make_fake_rebyte):
    server = make_fake_rebyte(key=KEY)
    env = cli_env(server.base_url, KEY, PYTHONIOENCODING="ascii")
    result = run_cli("create", "-p", "Écris un résumé ✓", env=env, timeout=60)
    assert result.returncode == 0, result.stderr
    task = result.json()
    assert task["id"] and task["url"]
    assert result.stdout.isascii()
    result = run_cli("get", task["id"], env=env, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.json()["id"] == task["id"]


# --------------------------------------------------------------------------------- signals


def start(args, env):
    import subprocess

    return subprocess.Popen([sys.executable, str(ROOT / "scripts" / "rebyte_cli.py"), *args],
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env)


@pytest.mark.parametrize("signame", ["SIGTERM", "SIGHUP"])
@pytest.mark.parametrize("mode, args, expect", [
    ("done-disagrees", ["wait", "task-1", "--timeout", "30"], "task task-1 keeps running"),
    ("sse-no-blank", ["watch", "task-1", "--wait-timeout", "30"], "task task-1 keeps running"),
    ("json-trickle", ["create", "-p", "hi"], "may exist anyway"),
])
def test_a_signal_is_handled_like_ctrl_c(make_hostile_server, signame, mode, args, expect):
    import signal

    server = make_hostile_server(mode, lifetime=40)
    # The signal comes while the CLI is in the middle of the call that takes long: the
    # create whose answer trickles, or the wait or watch once its event stream is open.
    aimed = ("POST", "/v1/tasks") if args[0] == "create" else ("GET", "/v1/tasks/task-1/events")
    process = start(args, cli_env(server.base_url, KEY))
    try:
        deadline = time.monotonic() + 20
        while aimed not in [request[:2] for request in list(server.requests)]:
            assert process.poll() is None, process.communicate()
            assert time.monotonic() < deadline, f"the CLI never sent {aimed}"
            time.sleep(0.02)
        time.sleep(0.3)
        process.send_signal(getattr(signal, signame))
        stdout, stderr = process.communicate(timeout=15)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 128 + getattr(signal, signame), stderr
    assert expect in stderr and "Traceback" not in stderr


@pytest.mark.parametrize("change", ["shrink", "delete"])
def test_cli_upload_of_a_file_changed_after_its_check_exits_2(tmp_path, change):
    from hostile_server import HostileServer

    path = tmp_path / "data.csv"
    path.write_bytes(b"x" * 200_000)

    class ChangesTheFile(HostileServer):
        """Answers the upload slot only after the file was shrunk or deleted."""

        def _answer(self, connection, method, path_):
            if method == "POST" and path_ == "/v1/files":
                if change == "shrink":
                    path.write_bytes(b"x" * 10)
                else:
                    path.unlink()
            super()._answer(connection, method, path_)

    with ChangesTheFile("events-no-key") as server, Timer() as timer:
        result = cli(server.base_url, "upload", str(path), timeout=30)
    assert result.returncode == EXIT_USAGE, result.stderr
    assert ("changed" if change == "shrink" else "deleted") in result.stderr
    assert "Traceback" not in result.stderr
    assert timer.elapsed < 10
