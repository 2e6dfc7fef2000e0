"""The client driven against the local server over real sockets, end to end."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest
from fake_rebyte import final_result_for
from openapi_check import operations, spec, template_of, validate_request

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))

from rebyte_client import (  # noqa: E402
    APITimeoutError,
    NotFoundError,
    OutcomeUnknownError,
    RebyteClient,
    WaitTimeoutError,
)


@pytest.fixture
def client_for(api_key):
    """client_for(server, **options): a client pointed at a local server, closed after."""
    made = []

    def make(server, **options) -> RebyteClient:
        client = RebyteClient(api_key, base_url=server.base_url, **options)
        made.append(client)
        return client

    yield make
    for client in made:
        client.close()


def test_full_lifecycle(fake_rebyte, client_for, tmp_path):
    client = client_for(fake_rebyte)
    data = tmp_path / "sales.csv"
    data.write_text("region,revenue\nnorth,120\n")
    ref = client.files.upload(data)
    assert ref["filename"].startswith("sales-") and ref["filename"].endswith(".csv")

    created = client.tasks.create("Summarise sales", skills=["data-analysis-workflow"], files=[ref])
    assert created["status"] == "running" and created["url"].startswith("https://")
    assert created["id"] in [t["id"] for t in client.tasks.list(limit=5)["data"]]

    done = client.tasks.wait(created["id"], poll_interval=0.1, timeout=30)
    assert done["status"] == "completed" and done["completedAt"]
    assert client.tasks.result(created["id"]) == final_result_for("Summarise sales")

    follow = client.tasks.follow_up(created["id"], "Now chart it [duration=0.5]")
    after = client.tasks.wait(
        created["id"], prompt_id=follow["promptId"], poll_interval=0.1, timeout=30
    )
    assert [p["status"] for p in after["prompts"]] == ["succeeded", "succeeded"]
    answer = client.tasks.result(created["id"], prompt_id=follow["promptId"])
    assert answer == final_result_for("Now chart it [duration=0.5]")

    shared = client.tasks.set_visibility(created["id"], "public")
    assert shared["visibility"] == "public" and shared["shareUrl"]

    long_one = client.tasks.follow_up(created["id"], "Something long [duration=30]")
    client.tasks.cancel(created["id"])
    canceled = client.tasks.wait(
        created["id"], prompt_id=long_one["promptId"], poll_interval=0.1, timeout=10
    )
    assert canceled["status"] == "canceled"
    content = client.tasks.content(created["id"])
    assert [p["userPrompt"] for p in content["prompts"]][0] == "Summarise sales"

    client.tasks.delete(created["id"])
    with pytest.raises(NotFoundError):
        client.tasks.get(created["id"])
    assert fake_rebyte.tasks_created == 1 and fake_rebyte.prompts_created == 2


def test_every_request_the_client_sends_conforms_to_the_spec(fake_rebyte, client_for, tmp_path):
    client = client_for(fake_rebyte)
    data = tmp_path / "a.txt"
    data.write_text("hello")
    ref = client.files.upload(data)
    task = client.tasks.create(
        "Do it",
        executor="claude",
        model="lite",
        skills=["pdf"],
        files=[ref],
        github_url="https://github.com/owner/repo",
        branch_name="main",
    )
    client.tasks.get(task["id"])
    list(client.tasks.iter(page_size=10))
    client.tasks.follow_up(task["id"], "More", skills=["docx"])
    client.tasks.set_visibility(task["id"], "private")
    client.tasks.cancel(task["id"])
    client.tasks.content(task["id"], include_events=True)
    list(client.tasks.events(task["id"]))
    client.tasks.delete(task["id"])
    computer = client.computers.create(name="e2e", icon="laptop")
    list(client.computers.iter(page_size=10))
    client.computers.wait(computer["id"], poll_interval=0.05)
    client.computers.delete(computer["id"])
    hook = client.webhooks.create(
        "https://example.com/e2e", ["task.completed"], description="e2e", secret="s3cret"
    )
    client.webhooks.list()
    client.webhooks.get(hook["id"])
    client.webhooks.public_key()
    client.webhooks.delete(hook["id"])
    covered = set()
    for entry in fake_rebyte.requests(listener="api"):
        validate_request(entry["method"], entry["path"], entry["json"], entry["query"])
        covered.add((entry["method"], template_of(entry["path"])))
    # Every operation but the artifacts' (issue 10's artifact work extends this to all).
    tags = {"files", "tasks", "results", "computers", "webhooks"}
    checked = {
        (method, template)
        for method, template in operations()
        if set(spec()["paths"][template][method.lower()]["tags"]) & tags
    }
    assert covered == checked


def test_retries_through_faults_create_nothing_twice(make_fake_rebyte, client_for):
    server = make_fake_rebyte(prompt_duration=0.2, retry_after="0")
    client = client_for(server, max_retries=3)
    server.inject("POST", "/v1/tasks", "429", count=2)
    server.inject("GET", "/v1/tasks/[^/]+", "503-html", count=1)
    server.inject("GET", "/v1/tasks/[^/]+", "reset", count=1)
    server.inject("POST", "/v1/tasks/[^/]+/prompts", "429", count=1)
    task = client.tasks.create("Once only")
    client.tasks.get(task["id"])
    client.tasks.follow_up(task["id"], "And once more")
    assert len(server.requests("POST", "/v1/tasks")) == 3
    assert len(server.requests("POST", "/v1/tasks/[^/]+/prompts")) == 2
    assert server.tasks_created == 1 and server.prompts_created == 1


def test_a_create_that_fails_after_being_read_is_not_sent_again(make_fake_rebyte, client_for):
    server = make_fake_rebyte()
    client = client_for(server, max_retries=3)
    server.inject("POST", "/v1/tasks", "reset", after=True)
    with pytest.raises(OutcomeUnknownError) as caught:
        client.tasks.create("Maybe")
    assert "may have been created" in str(caught.value)
    assert len(server.requests("POST", "/v1/tasks")) == 1
    assert server.tasks_created == 1


def test_a_stalled_server_ends_in_a_timeout_error(make_fake_rebyte, client_for):
    server = make_fake_rebyte()
    client = client_for(server, read_timeout=0.5, create_timeout=0.5, max_retries=1)
    server.inject("*", ".*", "stall", count=10)
    started = time.monotonic()
    with pytest.raises(APITimeoutError):
        client.tasks.get("t-1")
    assert time.monotonic() - started < 0.5 * 2 + 2  # two attempts and one short pause
    started = time.monotonic()
    with pytest.raises(OutcomeUnknownError):
        client.tasks.create("Stalled")
    assert time.monotonic() - started < 0.5 + 1.5


UPLOAD_AND_MEASURE = textwrap.dedent(
    """
    import sys
    sys.path.insert(0, sys.argv[1])
    from rebyte_client import RebyteClient

    def peak_kib():
        for line in open("/proc/self/status"):
            if line.startswith("VmHWM:"):
                return int(line.split()[1])

    client = RebyteClient(sys.argv[2], base_url=sys.argv[3])
    before = peak_kib()
    ref = client.files.upload(sys.argv[4])
    print(before, peak_kib(), ref["filename"])
    """
)


def _peak_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise AssertionError("no VmHWM")


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="needs Linux /proc")
def test_large_upload_runs_in_constant_memory_on_both_sides(api_key, tmp_path):
    big = tmp_path / "big.bin"
    with open(big, "wb") as handle:
        handle.truncate(400 * 1024 * 1024)  # sparse: costs no disk
    server = subprocess.Popen(
        [sys.executable, str(ROOT / "tests" / "fake_rebyte.py"), "--port", "0", "--key", api_key],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        base_url = server.stdout.readline().strip()
        server_before = _peak_kib(server.pid)
        env = dict(os.environ, NO_PROXY="127.0.0.1,127.0.0.2")
        measured = subprocess.run(
            [
                sys.executable,
                "-c",
                UPLOAD_AND_MEASURE,
                str(ROOT / "scripts"),
                api_key,
                base_url,
                str(big),
            ],
            capture_output=True,
            text=True,
            timeout=120,
            env=env,
        )
        assert measured.returncode == 0, measured.stderr
        before, after, filename = measured.stdout.split()
        server_growth_mib = (_peak_kib(server.pid) - server_before) / 1024
    finally:
        server.terminate()
        server.wait(timeout=10)
    client_growth_mib = (int(after) - int(before)) / 1024
    assert filename.startswith("big-")
    assert client_growth_mib < 32, f"client grew {client_growth_mib:.1f} MiB"
    assert server_growth_mib < 32, f"server grew {server_growth_mib:.1f} MiB"


# ------------------------------------------------------------------ events


def _all_events(client: RebyteClient, task_id: str) -> list:
    return list(client.tasks.events(task_id, reconnect_delay=0.05))


@pytest.mark.parametrize("mode", ["reset", "eof"])
def test_a_stream_dropped_midway_loses_and_repeats_nothing(make_fake_rebyte, client_for, mode):
    server = make_fake_rebyte(
        prompt_duration=1.0, events_drop_after=2, events_drops=2, events_drop_mode=mode
    )
    client = client_for(server)
    task = client.tasks.create("Watch me through drops")
    events = _all_events(client, task["id"])
    data = events[:-1]
    assert [e["seq"] for e in data] == list(range(len(data)))  # none lost, none repeated
    assert [e["eventType"] for e in data][0] == "init" and data[-1]["eventType"] == "result"
    assert (
        events[-1]["eventType"] == "done" and events[-1]["status"] == "succeeded"
    )  # the prompt word, as sent
    assert events[-1]["finalResult"] == final_result_for("Watch me through drops")
    assert len(server.requests("GET", "/v1/tasks/[^/]+/events")) >= 3  # it did reconnect


def test_an_early_empty_done_is_not_the_end(make_fake_rebyte, client_for):
    server = make_fake_rebyte(prompt_duration=1.0, events_early_done=True)
    client = client_for(server)
    task = client.tasks.create("Too early")
    events = _all_events(client, task["id"])
    assert [e["eventType"] for e in events][0] == "init"
    assert events[-1]["eventType"] == "done" and events[-1]["lastSeq"] >= 0
    assert events[-1]["status"] == "succeeded"


def test_cancel_during_a_watch_ends_the_stream_canceled(make_fake_rebyte, client_for):
    server = make_fake_rebyte(prompt_duration=20.0, keepalive_interval=0.2)
    client = client_for(server)
    task = client.tasks.create("Long job")
    canceler = threading.Timer(1.0, client.tasks.cancel, args=(task["id"],))
    canceler.start()
    try:
        events = _all_events(client, task["id"])
    finally:
        canceler.cancel()
    assert events[-1]["eventType"] == "done" and events[-1]["status"] == "canceled"
    assert client.tasks.get(task["id"])["status"] == "canceled"


def test_an_agent_question_arrives_as_its_own_event(make_fake_rebyte, client_for):
    server = make_fake_rebyte(prompt_duration=0.6)
    client = client_for(server)
    task = client.tasks.create("Ask first [ask]")
    kinds = [e["eventType"] for e in _all_events(client, task["id"])]
    assert "ask_user_question" in kinds
    assert kinds.index("ask_user_question") < kinds.index("result")


class TricklingServer:
    """Answers every request one header line at a time, slowly, for as long as it may.

    Each read arrives well within any read timeout, so only a deadline for the
    whole call can stop the client from waiting on it.
    """

    def __init__(self, pause: float = 0.2, lasts: float = 20.0) -> None:
        self.pause, self.lasts = pause, lasts
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.stopped = threading.Event()
        threading.Thread(target=self._serve, daemon=True).start()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.listener.getsockname()[1]}/v1"

    def _serve(self) -> None:
        self.listener.settimeout(0.2)
        while not self.stopped.is_set():
            try:
                connection, _ = self.listener.accept()
            except OSError:
                continue
            threading.Thread(target=self._trickle, args=(connection,), daemon=True).start()

    def _trickle(self, connection: socket.socket) -> None:
        with connection:
            connection.recv(65536)
            connection.sendall(b"HTTP/1.1 200 OK\r\n")
            ends = time.monotonic() + self.lasts
            while time.monotonic() < ends and not self.stopped.wait(self.pause):
                try:
                    connection.sendall(b"X-Slow: still here\r\n")
                except OSError:
                    return

    def stop(self) -> None:
        self.stopped.set()
        self.listener.close()


@pytest.fixture
def trickling_server():
    server = TricklingServer()
    yield server
    server.stop()


def test_a_trickling_server_cannot_outlast_the_total_timeout(trickling_server, api_key):
    client = RebyteClient(api_key, base_url=trickling_server.base_url, total_timeout=1.5)
    started = time.monotonic()
    with pytest.raises(APITimeoutError):
        client.tasks.get("t-1")
    assert time.monotonic() - started < 1.5 + 1.0


def test_a_trickling_server_cannot_outlast_a_wait(trickling_server, api_key):
    client = RebyteClient(api_key, base_url=trickling_server.base_url)
    started = time.monotonic()
    with pytest.raises(WaitTimeoutError):
        client.tasks.wait("t-1", timeout=1.0, poll_interval=0.2)
    assert time.monotonic() - started < 1.0 + 2.0 + 1.0  # the deadline, the last poll's grace
