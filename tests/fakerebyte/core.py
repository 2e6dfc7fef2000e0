"""FakeRebyte: the state every resource shares (one lock, the clock, the knobs, the
request log), the two listeners' start and stop, and the assembly of the resource mixins.
"""

from __future__ import annotations

import itertools
import random
import re
import secrets
import socket
import tempfile
import threading
import time
from datetime import datetime, timezone

from fakerebyte.agent import Agent
from fakerebyte.artifacts import Artifacts
from fakerebyte.base import DEFAULT_KEY
from fakerebyte.computers import Computers
from fakerebyte.faults import DEFAULT_RANDOM_FAULTS, Faults
from fakerebyte.files import Files
from fakerebyte.http import _Server
from fakerebyte.knobs import _ADDRESS_KNOBS, _KNOBS, checked_knob
from fakerebyte.tasks import Tasks, TaskViews
from fakerebyte.webhooks import Webhooks


class FakeRebyte(Tasks, TaskViews, Files, Artifacts, Agent, Computers, Webhooks, Faults):
    """The server: state in memory, two listeners, a request log and fault injection.

    The routes and helpers of each resource are the mixins' (one module each); this class
    holds what they share: the state, one lock, the clock, the knobs and the request log.
    """

    # Long: the signature lists every knob with its default (inspect.signature is how
    # tests and the command line compare them); the body only makes the empty state.
    def __init__(
        self,
        key: str = DEFAULT_KEY,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        upload_host: str = "127.0.0.2",
        upload_port: int = 0,
        provision_delay: float = 0.0,
        prompt_duration: float = 0.5,
        seed: int = 0,
        fault_rate: float = 0.0,
        fault_kinds=DEFAULT_RANDOM_FAULTS,
        fault_routes=None,
        fault_after: bool = False,
        retry_after: str = "1",
        upload_url_ttl: float = 3600.0,
        seed_tasks: int = 0,
        events_early_done: bool = False,
        events_drop_after: int | None = None,
        events_drops: int = 1,
        events_drop_mode: str = "reset",
        keepalive_interval: float = 2.0,
        upload_dir: str | None = None,
        log_sink=None,
        computer_ready_delay: float = 0.5,
        artifact_bytes: int = 65536,
        artifacts_wrapper: str = "data",
        artifact_name_field: str = "filename",
        artifact_download: str = "direct",
        webhooks_wrapper: str = "data",
        task_view_extras: bool = False,
        list_status: bool = False,
        done_status_words: str = "prompt",
        task_read_lag: float = 0.0,
        events_route: bool = True,
        final_result_delay: float = 0.0,
        empty_final_result: bool = False,
        content_prompt_ids: bool = True,
        service_executor: str | None = None,
        service_model: str | None = None,
        submitted_equals_completed: bool = False,
        webhook_dedupe: bool = False,
        cancel_answer: str = "status",
        artifact_upload_wrapper: str = "data",
        upload_url_field: str = "uploadUrl",
        public_key_field: str = "publicKey",
        unknown_field: bool = False,
        agent_timeout: float = 30.0,
    ):
        # Long: one argument per knob, each stored as given; the listeners start in start().
        knobs = {name: value for name, value in locals().items() if name in _KNOBS}
        self._lock = threading.RLock()
        self._changed = threading.Condition(self._lock)  # wakes event streams
        self._generation = 0
        self._stopping = threading.Event()
        self._mono0, self._wall0 = time.monotonic(), time.time()
        self._tasks: dict = {}  # id -> _Task, in creation order
        self._workspaces: set = set()
        self._files: dict = {}  # id -> _File
        self._computers: dict = {}  # id -> _Computer, in creation order
        self._artifacts: dict = {}  # workspace id -> {name: _Artifact}
        self._artifact_uploads: dict = {}  # id -> _ArtifactUpload
        self._webhooks: dict = {}  # id -> _Webhook, in creation order
        self._artifact_dir = tempfile.TemporaryDirectory(prefix="fake-rebyte-artifacts-")
        self._agent_dir: str | None = None  # kept bundles and agent clones (files.py)
        self._agent_lock = threading.Lock()  # one agent run at a time; before _lock
        self._agent_abandoned: dict = {}  # clone folder -> thread of a timed-out run
        self._public_key = self._make_public_key(seed)
        self._scripted: list = []
        self._signing_key = secrets.token_bytes(32)
        self._connection_ids = itertools.count(1)
        self._open_connections: set = set()
        self._handler_threads: set = set()
        self._servers: list = []
        self._threads: list = []
        self.request_log: list = []
        self.agent_log: list = []  # one entry per simulated agent run (agent.py)
        self.tasks_created = 0
        self.prompts_created = 0
        assert set(knobs) == _KNOBS, "every knob is a constructor keyword"
        self.configure(**knobs)
        self._seed_tasks(seed_tasks)

    # ---- life cycle ------------------------------------------------------------------------

    def start(self) -> FakeRebyte:
        if self._servers:
            return self
        self._stopping.clear()
        api = _Server((self.host, self.port), self, "api")
        try:
            upload = _Server((self.upload_host, self.upload_port), self, "upload")
        except OSError:
            api.server_close()
            raise
        self._servers = [api, upload]
        for server in self._servers:
            thread = threading.Thread(
                target=server.serve_forever,
                kwargs={"poll_interval": 0.02},
                name=f"fake-rebyte-{server.listener}",
                daemon=True,
            )
            thread.start()
            self._threads.append(thread)
        return self

    def stop(self) -> None:
        """Stop fast: wake stalls, streams and provisioning waits, then cut open sockets."""
        if not self._servers:
            return
        self._stopping.set()
        self._notify()
        stoppers = [threading.Thread(target=server.shutdown) for server in self._servers]
        for stopper in stoppers:  # together: each waits up to a poll interval
            stopper.start()
        for stopper in stoppers:
            stopper.join()
        for server in self._servers:
            server.server_close()
        with self._lock:
            connections = list(self._open_connections)
            handlers = list(self._handler_threads)
        for connection in connections:
            try:
                connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        deadline = time.monotonic() + 2.0
        for thread in [*self._threads, *handlers]:
            if thread is not threading.current_thread():
                thread.join(max(0.0, deadline - time.monotonic()))
        self._servers, self._threads = [], []
        self._discard_kept()

    def __enter__(self) -> FakeRebyte:
        return self.start()

    def __exit__(self, *exc_info) -> None:
        self.stop()

    @property
    def base_url(self) -> str:
        host, port = self._address("api")
        return f"http://{host}:{port}/v1"

    @property
    def upload_base_url(self) -> str:
        host, port = self._address("upload")
        return f"http://{host}:{port}"

    def _address(self, listener: str) -> tuple:
        for server in self._servers:
            if server.listener == listener:
                return server.server_address[:2]
        raise RuntimeError("the server is not started")

    # ---- knobs and faults ------------------------------------------------------------------

    def configure(self, **knobs) -> None:
        """Change knobs (see tests/fake_rebyte.py); safe while requests are served."""
        unknown = set(knobs) - _KNOBS
        if unknown:
            raise TypeError(f"unknown knob(s): {', '.join(sorted(unknown))}")
        with self._lock:
            if self._servers and _ADDRESS_KNOBS & set(knobs):
                raise ValueError("host and port knobs cannot change while the server runs")
            for name, value in knobs.items():
                value = checked_knob(name, value)
                if name == "seed":
                    self._rng = random.Random(value)
                if name == "artifact_bytes":  # the name of a test helper method too
                    name = "artifact_bytes_knob"
                setattr(self, name, value)
        self._notify()

    # ---- request log -----------------------------------------------------------------------

    def requests(
        self, method: str | None = None, path_regex: str | None = None, listener: str | None = "api"
    ) -> list:
        """Logged requests, filtered (path_regex must match the whole path; listener None: both)."""
        with self._lock:
            entries = list(self.request_log)
        return [
            entry
            for entry in entries
            if (listener is None or entry["listener"] == listener)
            and (method is None or entry["method"] == method.upper())
            and (path_regex is None or re.fullmatch(path_regex, entry["path"]))
        ]

    def clear_log(self) -> None:
        with self._lock:
            self.request_log.clear()

    def held(self) -> dict:
        """Ids of the live tasks (with their workspace and prompt ids), of the file slots,
        computers and webhooks, oldest first, read in-process: for a test that hands ids to
        a shell or an interpreter, which must not take them from an HTTP answer."""
        with self._lock:
            tasks = [
                {
                    "id": task.id,
                    "workspaceId": task.workspace_id,
                    "promptIds": [prompt.id for prompt in task.prompts],
                }
                for task in self._tasks.values()
                if not task.deleted
            ]
            files = [
                {"id": record.id, "filename": record.filename} for record in self._files.values()
            ]
            computers = [c.id for c in self._computers.values() if not c.deleted]
            webhooks = list(self._webhooks)
        return {"tasks": tasks, "files": files, "computers": computers, "webhooks": webhooks}

    def _record(
        self, listener: str, method: str, path: str, query: dict, headers: dict, connection: int
    ) -> dict:
        entry = {
            "listener": listener,
            "method": method,
            "path": path,
            "query": query,
            "headers": headers,
            "json": None,
            "body_bytes": 0,
            "status": None,
            "fault": None,
            "connection": connection,
            "time": time.time(),
            "request_id": None,
        }
        with self._lock:
            self.request_log.append(entry)
        return entry

    def _finish(self, entry: dict) -> None:
        sink = self.log_sink
        if sink is not None:
            sink(entry)

    # ---- connections -----------------------------------------------------------------------

    def _register_connection(self, connection: socket.socket) -> int:
        with self._lock:
            self._open_connections.add(connection)
            self._handler_threads.add(threading.current_thread())
            return next(self._connection_ids)

    def _unregister_connection(self, connection: socket.socket) -> None:
        with self._lock:
            self._open_connections.discard(connection)
            self._handler_threads.discard(threading.current_thread())

    # ---- clock -----------------------------------------------------------------------------

    def _now(self) -> float:
        return time.monotonic()

    def _iso(self, moment: float | None) -> str | None:
        if moment is None:
            return None
        wall = datetime.fromtimestamp(self._wall0 + (moment - self._mono0), timezone.utc)
        return wall.isoformat(timespec="milliseconds").replace("+00:00", "Z")

    def _notify(self) -> None:
        with self._changed:
            self._generation += 1
            self._changed.notify_all()
