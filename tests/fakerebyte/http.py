"""HTTP: the two listeners (_Server) and the request handler (_Handler): connection
handling, request parsing, replies, faults and streamed bodies.
"""

from __future__ import annotations

import json
import secrets
import socket
import socketserver
import struct
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING
from urllib.parse import parse_qsl, urlsplit

from fakerebyte.artifacts import _Artifact, _ByteStream
from fakerebyte.base import (
    CHUNK,
    MAX_ARTIFACT_FORM,
    MAX_DRAIN,
    MAX_JSON_BODY,
    Reply,
    _Abort,
    _HttpError,
    _is_multipart,
    _Request,
)
from fakerebyte.events import EventStreams
from fakerebyte.faults import _fault_reply, _fault_success_status
from fakerebyte.files import StorageUploads
from fakerebyte.routes import dispatch, is_download, storage_route
from fakerebyte.tasks import _EventStream

if TYPE_CHECKING:
    from fakerebyte.core import FakeRebyte


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(self, address: tuple, fake: FakeRebyte, listener: str):
        self.fake = fake
        self.listener = listener
        super().__init__(address, _Handler)

    def server_bind(self) -> None:
        # HTTPServer.server_bind looks the host name up (getfqdn), which may wait on DNS.
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = self.server_address[:2]


class _Handler(StorageUploads, EventStreams, BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "FakeRebyte/1.0"
    # Headers and body go out as two writes: with Nagle on, the body would wait for the
    # client's delayed ACK, about 40 ms per request on a kept-alive connection.
    disable_nagle_algorithm = True
    server: _Server

    def setup(self) -> None:
        super().setup()
        self.fake = self.server.fake
        self.connection_id = self.fake._register_connection(self.connection)

    def finish(self) -> None:
        try:
            super().finish()
        except OSError:
            pass
        finally:
            self.fake._unregister_connection(self.connection)

    def version_string(self) -> str:
        return self.server_version

    def log_message(self, format, *args) -> None:  # quiet: the request log says it all
        pass

    def do_GET(self) -> None:
        self._serve()

    do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = do_GET

    # ---- one request -----------------------------------------------------------------------

    def _serve(self) -> None:
        parts = urlsplit(self.path)
        query = dict(parse_qsl(parts.query, keep_blank_values=True))
        entry = self.fake._record(
            self.server.listener,
            self.command,
            parts.path,
            query,
            dict(self.headers.items()),
            self.connection_id,
        )
        fault, after = self.fake._choose_fault(self.command, parts.path)
        entry["fault"] = fault
        try:
            if self.server.listener == "upload":
                self._serve_upload(entry, parts.path, query, fault, after)
            else:
                self._serve_api(entry, parts.path, query, fault, after)
        except _HttpError as error:  # the request itself is malformed (its framing)
            error.reply.close = True
            try:
                self._send(entry, error.reply)
            except OSError:
                self.close_connection = True
        except (OSError, _Abort):  # the client went away, or stop() cut the socket
            self.close_connection = True
        finally:
            self.fake._finish(entry)

    def _serve_api(self, entry: dict, path: str, query: dict, fault, after: bool) -> None:
        raw, size, too_large = self._read_api_body()
        entry["body_bytes"] = size
        try:
            entry["json"] = json.loads(raw) if raw and not _is_multipart(self.headers) else None
        except ValueError:
            pass
        if fault and not after and not self._cuts_a_download(fault, path):
            self._answer_fault(entry, fault, None, path)
            return
        request = _Request(self.command, path, query, self.headers, raw)
        reply = dispatch(self.fake, request, too_large)
        if isinstance(reply, (_EventStream, _ByteStream)):
            if fault == "short-body" and isinstance(reply, _ByteStream):
                self._stream_bytes(entry, reply.artifact, cut=True)
            elif fault:
                self._answer_fault(entry, fault, None, path)
            elif isinstance(reply, _ByteStream):
                self._stream_bytes(entry, reply.artifact)
            else:
                self._stream_events(entry, reply)
        elif fault:
            self._answer_fault(entry, fault, reply, path)
        else:
            self._send(entry, reply)

    def _cuts_a_download(self, fault, path: str) -> bool:
        """A "short-body" fault on an artifact download cuts the real bytes half-way."""
        return fault == "short-body" and is_download(self.command, path)

    def _serve_upload(self, entry: dict, path: str, query: dict, fault, after: bool) -> None:
        if fault and not after and not self._cuts_a_download(fault, path):
            entry["body_bytes"] = self._drop_body(limit=None)
            self._answer_fault(entry, fault, None, path)
            return
        route = storage_route(self.command, path)
        if route == "download":
            target = self.fake._download_target(path, query)
            if isinstance(target, _Artifact) and fault in (None, "short-body"):
                self._stream_bytes(entry, target, cut=fault == "short-body")
                return
            reply = target if isinstance(target, Reply) else Reply(200)
        elif route == "artifact-put":
            reply = self._artifact_put(entry, path, query)
        else:
            reply = self._upload(entry, path, query)
        if fault:
            self._answer_fault(entry, fault, reply, path)
        else:
            self._send(entry, reply)

    def _stream_bytes(self, entry: dict, artifact: _Artifact, cut: bool = False) -> None:
        """An artifact's bytes, CHUNK at a time, with Content-Length (never held whole).

        cut=True (the "short-body" fault): the headers promise every byte, half is sent,
        then the connection closes: a download interrupted half-way.
        """
        request_id = "req_" + secrets.token_hex(12)
        entry["request_id"], entry["status"] = request_id, 200
        self.send_response(200)
        self.send_header("X-Request-Id", request_id)
        self.send_header("Content-Type", artifact.content_type)
        self.send_header("Content-Length", str(artifact.size))
        self.end_headers()
        if self.command == "HEAD":
            return
        left = artifact.size // 2 if cut else artifact.size
        for piece in artifact.chunks():
            if self.fake._stopping.is_set():
                raise _Abort()
            self.wfile.write(piece[:left])
            left -= len(piece)
            if left <= 0:
                break
        if cut:
            self.close_connection = True

    # ---- bodies ----------------------------------------------------------------------------

    def _content_length(self) -> int | None:
        raw = self.headers.get("Content-Length")
        if raw is None:
            return None
        if not raw.strip().isdigit():
            raise _HttpError(400, "validation_error", f"Invalid Content-Length {raw!r}.")
        return int(raw)

    def _read_api_body(self) -> tuple:
        """(body or None when too large, bytes received, too_large)."""
        limit = MAX_ARTIFACT_FORM if _is_multipart(self.headers) else MAX_JSON_BODY
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            return self._read_chunked(limit)
        length = self._content_length() or 0
        if length > limit:
            return None, self._drop_body(limit=MAX_DRAIN), True
        raw = self.rfile.read(length) if length else b""
        if len(raw) < length:
            raise ConnectionAbortedError("the client sent less than its Content-Length")
        return raw, length, False

    def _read_chunked(self, limit: int) -> tuple:
        parts, total = [], 0
        while True:
            line = self.rfile.readline(1024)
            try:
                size = int(line.split(b";")[0].strip(), 16)
            except ValueError:
                raise _HttpError(400, "validation_error", "Malformed chunked body.") from None
            if size == 0:
                while self.rfile.readline(1024).strip():  # trailers
                    pass
                break
            total += size
            if total > MAX_DRAIN:
                self.close_connection = True
                return None, total, True
            chunk = self.rfile.read(size)
            self.rfile.readline(8)
            if total <= limit:
                parts.append(chunk)
        if total > limit:
            return None, total, True
        return b"".join(parts), total, False

    def _drop_body(self, limit: int | None) -> int:
        """Read and forget the body (so the connection stays usable); close if it is too big."""
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            return self._read_chunked(0)[1]  # past MAX_DRAIN it gives up and closes
        length = self._content_length()
        if length is not None and limit is not None and length > limit:
            self.close_connection = True
            return 0
        dropped = 0
        while length and dropped < length:
            piece = self.rfile.read(min(CHUNK, length - dropped))
            if not piece:
                break
            dropped += len(piece)
        return dropped

    # ---- answers ---------------------------------------------------------------------------

    def _send(self, entry: dict, reply: Reply) -> None:
        request_id = "req_" + secrets.token_hex(12)
        entry["request_id"], entry["status"] = request_id, reply.status  # before the client
        self.send_response(reply.status)  # can read it
        self.send_header("X-Request-Id", request_id)
        if reply.content_type:
            self.send_header("Content-Type", reply.content_type)
        for name, value in reply.headers.items():
            self.send_header(name, value)
        if reply.status != 204:
            self.send_header("Content-Length", str(len(reply.body)))
        if reply.close or self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        if reply.body and self.command != "HEAD":
            self.wfile.write(reply.body)

    def _answer_fault(self, entry: dict, fault: str, real: Reply | None, path: str) -> None:
        if fault == "reset":
            self._reset()
        elif fault == "stall":
            self._stall()
        elif fault == "short-body":
            body = real.body if real is not None and real.body else b'{"id": "0123456789"}'
            status = entry["status"] = _fault_success_status(real, self.command, path)
            entry["request_id"] = "req_" + secrets.token_hex(12)
            self.send_response(status)
            self.send_header("X-Request-Id", entry["request_id"])
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(body[: len(body) // 2])
        else:
            self._send(entry, _fault_reply(fault, real, self.command, path, self.fake.retry_after))

    def _reset(self) -> None:
        """Close with SO_LINGER 0: the kernel sends RST, the client sees a connection reset."""
        self.close_connection = True
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.rfile.close()  # the file holds a reference: the socket closes only without it
        self.connection.close()

    def _stall(self) -> None:
        """Answer nothing until stop() or until the client closes its end."""
        self.close_connection = True
        self.connection.settimeout(0.1)
        while not self.fake._stopping.is_set():
            try:
                if not self.connection.recv(1, socket.MSG_PEEK):
                    return
                self.fake._stopping.wait(0.1)  # the client sent more; keep ignoring it
            except socket.timeout:
                continue
            except OSError:
                return
