"""The hostile server (tests/hostile_server.py) misbehaves exactly as each mode says.

Checked with raw sockets and http.client, never the project's client: the tests that
drive the client and the CLI against it rely on these behaviours being real.
"""

from __future__ import annotations

import http.client
import json
import math
import socket
import time

import pytest
from hostile_server import HUGE_LENGTH, MODES, TRICKLE, HostileServer

MIB = 1024 * 1024
CHUNK = 256 * 1024


def _port(server: HostileServer) -> int:
    return int(server.origin.rsplit(":", 1)[1])


def request(server: HostileServer, method: str, path: str, body: bytes = b"",
            headers: dict | None = None) -> socket.socket:
    """Send one request on a fresh connection; the caller reads the answer."""
    sock = socket.create_connection(("127.0.0.1", _port(server)), timeout=5)
    lines = [f"{method} {path} HTTP/1.1", f"Host: 127.0.0.1:{_port(server)}",
             f"Content-Length: {len(body)}"]
    lines += [f"{name}: {value}" for name, value in (headers or {}).items()]
    sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode() + body)
    return sock


def read_for(sock: socket.socket, seconds: float, limit: int = 64 * MIB) -> bytes:
    """What arrives within `seconds` (or until close, or `limit` bytes)."""
    deadline = time.monotonic() + seconds
    data = bytearray()
    while len(data) < limit:
        left = deadline - time.monotonic()
        if left <= 0:
            break
        sock.settimeout(left)
        try:
            piece = sock.recv(min(CHUNK, limit - len(data)))
        except socket.timeout:
            break
        if not piece:
            break
        data += piece
    return bytes(data)



def split(answer: bytes) -> tuple:
    """(status, headers with lower-case names, body) of a raw answer."""
    head, _, body = answer.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return int(lines[0].split()[1]), headers, body


def fetch(server: HostileServer, method: str, path: str, body: bytes = b"") -> tuple:
    """A complete (status, headers, body) of an answer that ends."""
    with request(server, method, path, body) as sock:
        return split(read_for(sock, 10))


def fetch_json(server: HostileServer, method: str, path: str, body: bytes = b""):
    status, headers, raw = fetch(server, method, path, body)
    assert headers["content-length"] == str(len(raw))
    return status, json.loads(raw)


def test_modes_are_named_checked_and_on_loopback():
    assert len(MODES) == len(set(MODES)) >= 20
    with pytest.raises(ValueError):
        HostileServer("no-such-mode")
    with pytest.raises(ValueError):
        HostileServer("redirect", echo="x\r\nSet-Cookie: a=b")
    with HostileServer("nan") as server:
        assert server.base_url == f"http://127.0.0.1:{_port(server)}/v1"


def test_it_stops_itself_after_its_lifetime():
    server = HostileServer("sse-trickle", lifetime=0.5).start()
    try:
        sock = request(server, "GET", "/v1/tasks/task-1/events")
        started = time.monotonic()
        answer = read_for(sock, 5)
        assert time.monotonic() - started < 2.5  # cut at the lifetime, not at our 5 s
        assert answer.startswith(b"HTTP/1.1 200")
        sock.close()
        time.sleep(0.2)
        with pytest.raises(OSError):
            socket.create_connection(("127.0.0.1", _port(server)), timeout=1).close()
    finally:
        server.stop()


def test_routes_the_mode_does_not_aim_at_answer_plainly():
    with HostileServer("sse-trickle") as server:
        status, created = fetch_json(server, "POST", "/v1/tasks", b'{"prompt": "p"}')
        assert status == 201 and created["id"] == "task-1"
        status, task = fetch_json(server, "GET", "/v1/tasks/task-1")
        assert status == 200 and task["status"] == "running" and task["prompts"][0]["id"]
        status, slot = fetch_json(server, "POST", "/v1/files", b'{"filename": "a"}')
        assert slot["uploadUrl"].startswith(server.origin + "/upload/")
        assert fetch(server, "PUT", "/upload/slot-1", b"abc")[0] == 200
        assert fetch(server, "DELETE", "/v1/tasks/task-1")[0] == 204
        assert [entry[:2] for entry in server.requests] == [
            ("POST", "/v1/tasks"), ("GET", "/v1/tasks/task-1"), ("POST", "/v1/files"),
            ("PUT", "/upload/slot-1"), ("DELETE", "/v1/tasks/task-1")]


def test_nested_json():
    with HostileServer("nested-json") as server:
        status, _, raw = fetch(server, "GET", "/v1/tasks/task-1")
        assert status == 200 and raw.startswith(b"[" * 1000) and len(raw) == 200_000
        with pytest.raises(RecursionError):
            json.loads(raw)


@pytest.mark.parametrize(("mode", "field", "value"), [
    ("prompts-not-list", "prompts", 5), ("status-list", "status", ["completed"])])
def test_wrong_typed_task_fields(mode, field, value):
    with HostileServer(mode) as server:
        assert fetch_json(server, "GET", "/v1/tasks/task-1")[1][field] == value


@pytest.mark.parametrize(("mode", "value"), [
    ("upload-url-int", 5), ("upload-url-object", {}),
    ("upload-url-file", "file:///etc/passwd")])
def test_wrong_upload_urls(mode, value):
    with HostileServer(mode) as server:
        assert fetch_json(server, "POST", "/v1/files", b"{}")[1]["uploadUrl"] == value
        status, slot = fetch_json(server, "POST", "/v1/workspaces/ws-1/artifacts/upload-url")
        assert status == 201 and slot["uploadUrl"] == value


def test_nan_in_every_object():
    with HostileServer("nan") as server:
        for method, path in [("POST", "/v1/tasks"), ("GET", "/v1/tasks/task-1"),
                             ("GET", "/v1/tasks")]:
            _, _, raw = fetch(server, method, path)
            assert b"NaN" in raw
            assert math.isnan(json.loads(raw)["cost"])  # Python reads it; JSON has no NaN


def test_creates_without_an_id():
    with HostileServer("no-id") as server:
        for path in ("/v1/tasks", "/v1/agent-computers", "/v1/webhooks", "/v1/files"):
            status, body = fetch_json(server, "POST", path, b"{}")
            assert status == 201 and body["id"] is None, path
        status, body = fetch_json(server, "POST", "/v1/tasks/task-1/prompts", b"{}")
        assert status == 201 and "promptId" not in body


def events_of(server: HostileServer) -> list:
    _, headers, raw = fetch(server, "GET", "/v1/tasks/task-1/events")
    assert headers["content-type"] == "text/event-stream"
    messages = []
    for block in raw.decode().split("\n\n"):
        lines = dict(line.split(": ", 1) for line in block.splitlines() if line)
        if lines:
            messages.append((lines["event"], json.loads(lines["data"])))
    return messages


def test_event_with_a_list_seq():
    with HostileServer("seq-list") as server:
        messages = events_of(server)
        assert messages[0][1]["seq"] == [1] and messages[-1][0] == "done"


def test_events_without_seq_or_event_key():
    with HostileServer("events-no-key") as server:
        *events, done = events_of(server)
        assert [event["payload"]["text"] for _, event in events] == ["one", "two", "three"]
        for name, event in events:
            assert name == "event" and "seq" not in event and "eventKey" not in event
        assert done[1]["status"] == "completed"
        assert fetch_json(server, "GET", "/v1/tasks/task-1")[1]["status"] == "completed"


def test_done_disagrees_with_get():
    with HostileServer("done-disagrees") as server:
        assert events_of(server)[-1] == ("done", {"status": "completed", "lastSeq": 0,
                                                   "finalResult": "Done."})
        for _ in range(2):
            assert fetch_json(server, "GET", "/v1/tasks/task-1")[1]["status"] == "running"


# The trickling modes are read at a fifth of their pause (`trickle`) for the same number
# of pauses: the counts are those of their own rates, checked by the first test below.
FAST = 0.2


def test_trickling_modes_keep_their_documented_rates_by_default():
    assert TRICKLE == {"sse-trickle": 1.0, "json-trickle": 0.25, "put-trickle": 1.0}
    for mode, pause in TRICKLE.items():
        assert HostileServer(mode).trickle == pause
        assert HostileServer(mode, trickle=FAST).trickle == FAST
    for wrong in (0, -1.0, float("nan")):
        with pytest.raises(ValueError):
            HostileServer("sse-trickle", trickle=wrong)


def test_sse_trickles_a_byte_a_second_with_no_newline():
    with HostileServer("sse-trickle", trickle=FAST) as server:
        with request(server, "GET", "/v1/tasks/task-1/events") as sock:
            _, headers, body = split(read_for(sock, 2.5 * FAST))
        assert headers["content-type"] == "text/event-stream"
        assert 1 <= len(body) <= 4 and b"\n" not in body


def test_sse_data_lines_without_a_blank_line():
    with HostileServer("sse-no-blank") as server:
        with request(server, "GET", "/v1/tasks/task-1/events") as sock:
            _, _, body = split(read_for(sock, 0.6))
        assert body.count(b"data: ") >= 3 and b"\n\n" not in body


def test_sse_huge_line():
    with HostileServer("sse-huge-line") as server:
        (name, event), done = events_of(server)
        assert name == "event" and len(event["payload"]["text"]) == 4 * MIB
        assert done == ("done", {"status": "completed", "lastSeq": 0, "finalResult": "Done."})


def test_endless_json_has_no_length_and_does_not_end():
    with HostileServer("endless-json") as server:
        with request(server, "GET", "/v1/tasks/task-1") as sock:
            answer = read_for(sock, 10, limit=8 * MIB)
        _, headers, body = split(answer)
        assert "content-length" not in headers and body.startswith(b'{"data": [')
        assert len(answer) == 8 * MIB  # still sending when we stopped reading


def test_json_trickles_a_byte_a_second():
    pause = TRICKLE["json-trickle"] * 0.4  # 0.1 s: 2.5 s at its own rate, read in 1 s
    with HostileServer("json-trickle", trickle=pause) as server:
        with request(server, "GET", "/v1/tasks/task-1") as sock:
            answer = read_for(sock, 2.5 * 0.4)
        _, headers, body = split(answer)
        assert headers["content-length"] == "64" and 5 <= len(body) <= 12


def test_huge_content_length():
    with HostileServer("huge-length", max_bytes=2 * MIB) as server:
        with request(server, "POST", "/v1/tasks", b"{}") as sock:
            status, headers, body = split(read_for(sock, 10))
        assert status == 201 and headers["content-length"] == str(HUGE_LENGTH)
        assert 2 * MIB - 100 <= len(body) <= 2 * MIB + 64 * 1024  # then it gave up


def test_list_pages_never_end():
    with HostileServer("endless-pages") as server:
        pages = [fetch_json(server, "GET", f"/v1/tasks?offset={n * 100}")[1] for n in range(3)]
        ids = [entry["id"] for page in pages for entry in page["data"]]
        assert len(ids) == len(set(ids)) == 300
        assert all(page["total"] > page["offset"] + len(page["data"]) for page in pages)
        computers = fetch_json(server, "GET", "/v1/agent-computers")[1]["data"]
        assert len(computers) == 100 and computers[0]["id"].startswith("computer-")


def test_put_target_trickles_its_answer_after_the_body():
    with HostileServer("put-trickle", trickle=FAST) as server:
        with request(server, "PUT", "/upload/slot-1", b"x" * 200_000) as sock:
            answer = read_for(sock, 2.5 * FAST)
        assert 1 <= len(answer) <= 4 and b"HTTP/1.1 200"[:len(answer)] == answer
        assert server.requests[0][:2] == ("PUT", "/upload/slot-1")


def test_redirect_location_contains_the_echo():
    with HostileServer("redirect", echo="rbk_secret_key") as server:
        status, headers, _ = fetch(server, "GET", "/v1/tasks")
        assert status == 302
        assert headers["location"] == f"{server.origin}/moved/rbk_secret_key"
    with HostileServer("redirect", echo="http://127.0.0.3:9/x?k=rbk_secret") as server:
        assert fetch(server, "GET", "/v1/tasks")[1]["location"] == (
            "http://127.0.0.3:9/x?k=rbk_secret")


def test_error_code_and_request_id_echo():
    with HostileServer("echo-error", echo="rbk_secret_key") as server:
        status, headers, raw = fetch(server, "GET", "/v1/tasks")
        assert status == 400 and headers["x-request-id"] == "rbk_secret_key"
        assert json.loads(raw)["error"]["code"] == "rbk_secret_key"


def test_not_http():
    with HostileServer("not-http") as server:
        connection = http.client.HTTPConnection("127.0.0.1", _port(server), timeout=5)
        connection.request("GET", "/v1/tasks")
        with pytest.raises(http.client.HTTPException):
            connection.getresponse()
        connection.close()


def test_fixture_starts_and_stops(make_hostile_server):
    server = make_hostile_server("echo-error", echo="code-x", lifetime=5)
    assert fetch(server, "GET", "/v1/tasks")[1]["x-request-id"] == "code-x"


def test_tls_takes_a_certificate_and_only_it_does():
    with pytest.raises(ValueError):
        HostileServer("tls")
    with pytest.raises(ValueError):
        HostileServer("nan", certfile="c.pem", keyfile="k.pem")
