"""A hostile Rebyte look-alike on a raw socket: each misbehaviour is a named mode.

The client and the CLI must end every call with a clear error, in bounded time and
memory, whatever a server sends (issue 13). This server sends the things a well-behaved
one never would. Standard library only, loopback only, and bounded: it stops itself after
`lifetime` seconds, and every endless answer also stops after `max_bytes`.

    with HostileServer("sse-trickle") as server:
        run_cli("--base-url", server.base_url, "wait", "task-1", "--timeout", "2")

Routes a mode does not aim at get plain, valid answers (a running task "task-1" in
workspace "ws-1", a file slot whose uploadUrl is on this server, and so on), so that a
client reaches the step that misbehaves. Every connection carries one request and ends
with Connection: close. `requests` records (method, path, headers) of each request.

Modes (MODES lists them; `echo` is the caller's string for the modes that use it):
  nested-json        every JSON answer is 100000 nested lists
  prompts-not-list   GET /tasks/{id} says "prompts": 5
  status-list        GET /tasks/{id} says "status": ["completed"]
  seq-list           the events stream's event says "seq": [1], then done completed
  upload-url-int     POST /files (and artifact upload-url) answer "uploadUrl": 5
  upload-url-object  ... "uploadUrl": {}
  upload-url-file    ... "uploadUrl": "file:///etc/passwd"
  nan                every JSON object answer carries a bare NaN ("cost": NaN)
  no-id              creates (tasks, computers, webhooks, files, follow-ups) answer 201
                     with no id ("id": null, no promptId)
  sse-trickle        the events stream sends one byte a second and never a newline
  sse-no-blank       the events stream sends `data:` lines forever, never a blank line
  sse-huge-line      the events stream sends one 4 MiB event line, then done completed
  endless-json       every JSON answer is close-delimited and never ends
  json-trickle       every JSON answer promises 64 bytes and sends one byte every 0.25 s
  huge-length        every JSON answer promises Content-Length 1 TiB and keeps sending
  endless-pages      list routes always give a full page of new ids, total ever larger
  put-trickle        a PUT (the storage upload) is read whole, then answered a byte a second
  redirect           every request is answered 302 with a Location that contains `echo`
                     (`echo` itself when it is an absolute URL)
  echo-error         every request is answered 400 with error code `echo` and
                     X-Request-Id `echo` (to check that both are scrubbed)
  done-disagrees     the stream's done says completed; GET /tasks/{id} keeps saying running
  events-no-key      three events carry neither seq nor eventKey; GET says completed
  not-http           every connection gets a few bytes that are not HTTP, then a close
  tls                plain answers, over TLS with the caller's `certfile` and `keyfile`
                     (a self-signed certificate, as a TLS-inspecting proxy presents)

`trickle` sets the pause between the bytes of the trickling modes (sse-trickle,
json-trickle, put-trickle) in seconds; by default each keeps the rate its line above says.
Tests pass a shorter one, with timeouts shorter in proportion, to spend less wall time.
"""

from __future__ import annotations

import argparse
import json
import re
import socket
import sys
import threading
import time
from urllib.parse import urlsplit

# Seconds between two bytes of a trickling answer, by mode (the `trickle` option overrides).
TRICKLE = {"sse-trickle": 1.0, "json-trickle": 0.25, "put-trickle": 1.0}
MODES = (
    "nested-json", "prompts-not-list", "status-list", "seq-list", "upload-url-int",
    "upload-url-object", "upload-url-file", "nan", "no-id", "sse-trickle", "sse-no-blank",
    "sse-huge-line", "endless-json", "json-trickle", "huge-length", "endless-pages",
    "put-trickle", "redirect",
    "echo-error", "done-disagrees", "events-no-key", "not-http", "tls",
)
TASK_ID = "task-1"
WORKSPACE_ID = "ws-1"
CREATED_AT = "2026-01-01T00:00:00.000Z"
MAX_HEAD = 64 * 1024
MAX_BODY = 64 * 1024 * 1024
NESTING = 100_000
HUGE_LINE = 4 * 1024 * 1024
HUGE_LENGTH = 1 << 40
CHUNK = 64 * 1024
_CREATES = re.compile(r"/v1/(tasks|agent-computers|webhooks|files|tasks/[^/]+/prompts)")
_LISTS = re.compile(r"/v1/(tasks|agent-computers)")
_ARTIFACT_UPLOAD_URL = re.compile(r"/v1/workspaces/[^/]+/artifacts/upload-url")


class _Closed(Exception):
    """The client went away, or the server's time is up."""


class HostileServer:
    """One listening socket on 127.0.0.1; a thread per connection; stops after `lifetime`."""

    def __init__(self, mode: str, *, echo: str = "", lifetime: float = 30.0,
                 max_bytes: int = 256 * 1024 * 1024, port: int = 0,
                 certfile: str = "", keyfile: str = "", trickle: float | None = None):
        if mode not in MODES:
            raise ValueError(f"unknown mode {mode!r}; known: {', '.join(MODES)}")
        if (mode == "tls") != bool(certfile and keyfile):
            raise ValueError("mode tls, and only it, takes certfile and keyfile")
        self._tls = None
        if mode == "tls":
            import ssl

            self._tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            self._tls.load_cert_chain(certfile, keyfile)
        if any(ch in echo for ch in "\r\n\0"):
            raise ValueError("echo must not hold CR, LF or NUL (it goes into a header)")
        self.mode, self.echo = mode, echo
        self.lifetime, self.max_bytes, self.port = float(lifetime), int(max_bytes), port
        if trickle is not None and not trickle > 0:
            raise ValueError("trickle must be a number of seconds above 0")
        self.trickle = float(trickle) if trickle is not None else TRICKLE.get(mode, 1.0)
        self.requests: list = []
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._listener: socket.socket | None = None
        self._threads: list = []
        self._connections: set = set()
        self._deadline = 0.0
        self._port = 0
        self._page = 0

    # ---- life cycle ------------------------------------------------------------------------

    def start(self) -> HostileServer:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        listener.settimeout(0.05)
        self._listener = listener
        self._port = listener.getsockname()[1]
        self._deadline = time.monotonic() + self.lifetime
        thread = threading.Thread(target=self._accept_loop, name="hostile-accept", daemon=True)
        thread.start()
        self._threads.append(thread)
        return self

    def stop(self) -> None:
        self._stopping.set()
        with self._lock:
            connections = list(self._connections)
            listener = self._listener
        if listener is not None:  # wakes the accept loop now, not at its next 0.05 s tick
            try:
                listener.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        for connection in connections:
            try:
                connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        for thread in list(self._threads):
            if thread is not threading.current_thread():
                thread.join(2.0)
        self._close_listener()

    def __enter__(self) -> HostileServer:
        return self.start()

    def __exit__(self, *exc_info) -> None:
        self.stop()

    @property
    def base_url(self) -> str:
        return f"{self.origin}/v1"

    @property
    def origin(self) -> str:
        if not self._port:
            raise RuntimeError("the server is not started")
        scheme = "https" if self._tls is not None else "http"
        return f"{scheme}://127.0.0.1:{self._port}"

    def _over(self) -> bool:
        return self._stopping.is_set() or time.monotonic() >= self._deadline

    def _accept_loop(self) -> None:
        while not self._over():
            listener = self._listener
            if listener is None:
                return
            try:
                connection, _ = listener.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            thread = threading.Thread(target=self._serve, args=(connection,),
                                      name="hostile-connection", daemon=True)
            with self._lock:
                self._connections.add(connection)
                self._threads = [t for t in self._threads if t.is_alive()]
                self._threads.append(thread)
            thread.start()
        self._stopping.set()  # time is up: wake every connection, take no new one
        self._close_listener()

    def _close_listener(self) -> None:
        with self._lock:
            listener, self._listener = self._listener, None
        if listener is not None:
            listener.close()

    # ---- one connection --------------------------------------------------------------------

    def _serve(self, connection: socket.socket) -> None:
        connection.settimeout(0.2)
        try:
            if self._tls is not None:
                connection.settimeout(5)
                connection = self._tls.wrap_socket(connection, server_side=True)
                connection.settimeout(0.2)
            if self.mode == "not-http":
                self._send(connection, b"SSH-2.0-OpenSSH_9.6\r\n\x00\xff\xfe garbage\r\n")
                return
            method, target, headers, pending = self._read_head(connection)
            path = urlsplit(target).path
            with self._lock:
                self.requests.append((method, path, headers))
            self._read_body(connection, headers, len(pending))
            self._answer(connection, method, path)
        except (_Closed, OSError, ValueError):
            pass
        finally:
            with self._lock:
                self._connections.discard(connection)
            try:
                connection.close()
            except OSError:
                pass

    def _recv(self, connection: socket.socket, size: int) -> bytes:
        while True:
            if self._over():
                raise _Closed()
            try:
                data = connection.recv(size)
            except socket.timeout:
                continue
            if not data:
                raise _Closed()
            return data

    def _read_head(self, connection: socket.socket) -> tuple:
        buffer = b""
        while b"\r\n\r\n" not in buffer:
            if len(buffer) > MAX_HEAD:
                raise ValueError("request head too large")
            buffer += self._recv(connection, 4096)
        head, _, rest = buffer.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        method, target, _ = lines[0].split(" ", 2)
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        return method, target, headers, rest

    def _read_body(self, connection: socket.socket, headers: dict, received: int) -> None:
        """Read (and drop) a Content-Length body, so the client sees its upload taken."""
        length = int(headers.get("content-length", "0") or 0)
        if length > MAX_BODY:
            raise ValueError("request body too large")
        while received < length:
            received += len(self._recv(connection, min(CHUNK, length - received)))

    def _send(self, connection: socket.socket, data: bytes) -> None:
        view = memoryview(data)
        while view:
            if self._over():
                raise _Closed()
            try:
                sent = connection.send(view)
            except socket.timeout:
                continue
            view = view[sent:]

    def _send_head(self, connection: socket.socket, status: int, headers: dict) -> None:
        reason = {200: "OK", 201: "Created", 204: "No Content", 302: "Found",
                  400: "Bad Request", 404: "Not Found"}.get(status, "Status")
        lines = [f"HTTP/1.1 {status} {reason}"]
        lines += [f"{name}: {value}" for name, value in headers.items()]
        lines += ["Connection: close", "", ""]
        self._send(connection, "\r\n".join(lines).encode("latin-1"))

    def _send_json_text(self, connection: socket.socket, status: int, text: str,
                        headers: dict | None = None) -> None:
        body = text.encode()
        self._send_head(connection, status, {"Content-Type": "application/json",
                                             "Content-Length": str(len(body)),
                                             **(headers or {})})
        self._send(connection, body)

    def _trickle(self, connection: socket.socket, data: bytes) -> None:
        """One byte every `self.trickle` seconds, until the client leaves or time is up."""
        for index in range(len(data)):
            self._send(connection, data[index:index + 1])
            if self._stopping.wait(self.trickle):
                raise _Closed()

    def _endless(self, connection: socket.socket, prefix: bytes, piece: bytes) -> None:
        sent = len(prefix)
        self._send(connection, prefix)
        block = piece * max(1, CHUNK // len(piece))
        while sent < self.max_bytes:
            self._send(connection, block)
            sent += len(block)

    # ---- answers ---------------------------------------------------------------------------

    def _answer(self, connection: socket.socket, method: str, path: str) -> None:
        mode = self.mode
        if mode == "redirect":
            location = self.echo if re.match(r"https?://", self.echo) else (
                f"{self.origin}/moved/{self.echo}")
            self._send_head(connection, 302, {"Location": location, "Content-Length": "0"})
            return
        if mode == "echo-error":
            body = json.dumps({"error": {"code": self.echo, "message": "Refused."}})
            self._send_json_text(connection, 400, body, {"X-Request-Id": self.echo})
            return
        if path.endswith("/events") and method == "GET":
            self._events(connection)
            return
        if method == "PUT":
            self._upload(connection)
            return
        status = 201 if method == "POST" and (
            _CREATES.fullmatch(path) or _ARTIFACT_UPLOAD_URL.fullmatch(path)) else 200
        if method == "DELETE":
            self._send_head(connection, 204, {})
            return
        if mode == "nested-json":
            self._send_json_text(connection, status, "[" * NESTING + "]" * NESTING)
        elif mode == "endless-json":
            self._send_head(connection, status, {"Content-Type": "application/json"})
            self._endless(connection, b'{"data": [', b'{"id": "x"}, ')
        elif mode == "json-trickle":
            self._send_head(connection, status, {"Content-Type": "application/json",
                                                 "Content-Length": "64"})
            self._trickle(connection, b'{"id": "' + b"x" * 52 + b'"}    ')
        elif mode == "huge-length":
            self._send_head(connection, status, {"Content-Type": "application/json",
                                                 "Content-Length": str(HUGE_LENGTH)})
            self._endless(connection, b'{"id": "', b"x")
        else:
            value = self._value(method, path)
            text = json.dumps(value)
            if mode == "nan" and isinstance(value, dict):
                text = text[:-1] + (", " if value else "") + '"cost": NaN}'
            self._send_json_text(connection, status, text)

    def _value(self, method: str, path: str):
        """The JSON of a route (twisted by the mode where it aims at that route)."""
        mode = self.mode
        if method == "POST" and _CREATES.fullmatch(path):
            if path == "/v1/files":
                return {"id": None if mode == "no-id" else "file-1", "filename": "data.csv",
                        "uploadUrl": self._upload_url()}
            if path.endswith("/prompts"):
                return {} if mode == "no-id" else {"promptId": "prompt-2"}
            if path == "/v1/agent-computers":
                return {**self._computer(), "id": None} if mode == "no-id" else (
                    self._computer())
            if path == "/v1/webhooks":
                return {"id": None if mode == "no-id" else "wh-1", "url": "https://e.test/h",
                        "events": ["task.completed"], "hasSecret": False, "isActive": True,
                        "createdAt": CREATED_AT}
            return {"id": None if mode == "no-id" else TASK_ID, "workspaceId": WORKSPACE_ID,
                    "url": f"https://app.rebyte.local/run/{TASK_ID}", "status": "running",
                    "createdAt": CREATED_AT}
        if method == "POST" and _ARTIFACT_UPLOAD_URL.fullmatch(path):
            return {"uploadUrl": self._upload_url(), "filename": "big.bin"}
        if method == "GET" and _LISTS.fullmatch(path):
            return self._list_page(path)
        if method == "GET" and path.startswith("/v1/agent-computers/"):
            return {**self._computer(), "status": "ready", "sandboxId": "sbx-1"}
        match = re.fullmatch(r"/v1/tasks/([^/]+)", path)
        if method == "GET" and match:
            return self._task(match.group(1))
        if method == "POST" and path.endswith("/cancel"):
            return {"id": TASK_ID, "status": "canceled"}
        return {"data": []}

    def _upload_url(self):
        return {"upload-url-int": 5, "upload-url-object": {},
                "upload-url-file": "file:///etc/passwd"}.get(
                    self.mode, f"{self.origin}/upload/slot-1?signature=abc")

    def _computer(self) -> dict:
        return {"id": "computer-1", "name": "Agent Computer", "status": "provisioning",
                "sandboxId": None, "icon": None, "url": "https://app.rebyte.local/c/1",
                "provisionError": None, "createdAt": CREATED_AT, "updatedAt": CREATED_AT}

    def _task(self, task_id: str) -> dict:
        done = self.mode in ("seq-list", "events-no-key")
        status = "completed" if done else "running"
        task = {"id": task_id, "url": f"https://app.rebyte.local/run/{task_id}",
                "title": "Hostile task", "executor": "claude", "model": "lite",
                "createdAt": CREATED_AT, "completedAt": CREATED_AT if done else None,
                "status": status, "workspaceId": WORKSPACE_ID, "visibility": "shared",
                "finalResult": "Done." if done else None,
                "prompts": [{"id": "prompt-1", "status": "succeeded" if done else "running",
                             "submittedAt": CREATED_AT,
                             "completedAt": CREATED_AT if done else None}]}
        if self.mode == "prompts-not-list":
            task["prompts"] = 5
        elif self.mode == "status-list":
            task["status"] = ["completed"]
        return task

    def _list_page(self, path: str) -> dict:
        kind = "computer" if "agent-computers" in path else "task"
        if self.mode != "endless-pages":
            entry = self._computer() if kind == "computer" else {
                key: value for key, value in self._task(TASK_ID).items()
                if key not in ("status", "prompts", "finalResult", "visibility")}
            return {"data": [entry], "total": 1, "limit": 50, "offset": 0}
        with self._lock:
            self._page += 1
            page = self._page
        entries = [{"id": f"{kind}-{page}-{index}", "url": "https://app.rebyte.local/x",
                    "title": "Again", "executor": "claude", "model": "lite", "name": "c",
                    "status": "ready", "sandboxId": "s", "createdAt": CREATED_AT,
                    "completedAt": CREATED_AT} for index in range(100)]
        return {"data": entries, "total": (page + 1) * 100, "limit": 100,
                "offset": (page - 1) * 100}

    def _events(self, connection: socket.socket) -> None:
        mode = self.mode
        self._send_head(connection, 200, {"Content-Type": "text/event-stream",
                                          "Cache-Control": "no-cache"})
        event = {"seq": 0, "timestamp": CREATED_AT, "promptId": "prompt-1",
                 "eventType": "text", "payload": {"text": "hello"}, "eventKey": "prompt-1:0"}
        done = {"status": "completed", "lastSeq": 0, "finalResult": "Done."}
        if mode == "sse-trickle":
            self._trickle(connection, b'event: event\ndata: {"seq": 0' + b" " * 100_000)
        elif mode == "sse-no-blank":
            line = b"data: " + json.dumps(event).encode() + b"\n"
            while True:
                self._send(connection, line)
                if self._stopping.wait(0.05):
                    raise _Closed()
        elif mode == "sse-huge-line":
            big = {**event, "payload": {"text": "x" * HUGE_LINE}}
            self._send(connection, b"event: event\ndata: " + json.dumps(big).encode() + b"\n\n")
            self._send(connection, self._sse("done", done))
        else:
            if mode == "seq-list":
                event["seq"] = [1]
            if mode == "events-no-key":
                del event["seq"], event["eventKey"]
                for text in ("one", "two", "three"):
                    self._send(connection, self._sse("event", {**event, "payload": {"text": text}}))
            else:
                self._send(connection, self._sse("event", event))
            self._send(connection, self._sse("done", done))

    @staticmethod
    def _sse(name: str, data: dict) -> bytes:
        return f"event: {name}\ndata: {json.dumps(data)}\n\n".encode()

    def _upload(self, connection: socket.socket) -> None:
        if self.mode == "put-trickle":
            self._trickle(connection, b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n"
                          b"Connection: close\r\n\r\n")
            return
        self._send_head(connection, 200, {"Content-Length": "0"})


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("mode", choices=MODES)
    parser.add_argument("--echo", default="")
    parser.add_argument("--lifetime", type=float, default=30.0, metavar="S")
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args(argv)
    with HostileServer(args.mode, echo=args.echo, lifetime=args.lifetime,
                       port=args.port) as server:
        print(server.base_url, flush=True)
        try:
            while not server._over():
                time.sleep(0.1)
        except KeyboardInterrupt:
            pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
