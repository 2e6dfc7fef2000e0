"""What one run of a command holds and shares with the others: the Run (what exists so far,
for Ctrl-C), the client made from the global options, the local record around creates,
confirmation, local input, and the deletes and computer creates several groups make."""

from __future__ import annotations

import sys

from .errors import EXIT_USAGE, TaskOutcome, UsageError, exit_code_for, explain, worst_exit
from .output import PROG, RUN, Output, one_line

MAX_PARALLEL_WAITS = 32  # tasks waited on at once; each mostly sleeps or listens


class Run:
    """What the command has done so far, so Ctrl-C can say what exists."""

    def __init__(self) -> None:
        import threading

        self.tasks = []  # (id, url) of tasks created or followed by this run
        self.creates_in_flight = 0
        self.followups_in_flight = 0
        self.computers = []  # ids of Agent Computers this run created: they outlive it
        self.computer_creates_in_flight = 0
        self._lock = threading.Lock()

    def sending(self, what: str) -> _InFlight:
        """Count a create or follow-up as in flight while it is sent (`with run.sending(...)`)."""
        return _InFlight(self, f"{what}s_in_flight")

    def remember_computer(self, computer_id: str) -> None:
        if computer_id and computer_id not in self.computers:
            self.computers.append(computer_id)

    def remember(self, task: dict) -> None:
        task_id, url = task.get("id"), task.get("url")
        if not task_id:
            return
        for index, (known_id, known_url) in enumerate(self.tasks):
            if known_id == task_id:
                if url and not known_url:  # learned its URL since (e.g. a wait's first poll)
                    self.tasks[index] = (task_id, url)
                return
        self.tasks.append((task_id, url))


class _InFlight:
    """Counts a request while it is sent. Ctrl-C leaves it counted: the server may still act."""

    def __init__(self, run: Run, counter: str) -> None:
        self._run, self._counter = run, counter

    def _add(self, step: int) -> None:
        with self._run._lock:
            setattr(self._run, self._counter, getattr(self._run, self._counter) + step)

    def __enter__(self) -> None:
        self._add(1)

    def __exit__(self, kind, error, trace) -> None:
        if kind is None or not issubclass(kind, KeyboardInterrupt):  # SIGTERM/SIGHUP too
            self._add(-1)


def load_client_module():
    """The client module, imported when a command first needs it (`--help` needs none of it).

    rebyte_client.py sits beside the rebyte package, on the path the launcher set."""
    import rebyte_client

    return rebyte_client


def make_client(given, *, concurrency: int = 0):
    """The client for the global options (`given`, a ClientOptions); `concurrency`: requests
    this command sends at once."""
    rc = load_client_module()
    if given.verbose:
        import logging

        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter(f"{PROG}: %(message)s"))
        logger = logging.getLogger("rebyte")
        logger.addHandler(handler)
        logger.setLevel(logging.DEBUG)
    timeout = given.timeout
    return rc.RebyteClient(
        base_url=given.base_url,
        read_timeout=timeout,
        create_timeout=timeout,
        total_timeout=timeout,
        max_retries=given.max_retries,
        # A connection per concurrent request: a full pool would drop some, with a warning.
        pool_size=max(16, concurrency, MAX_PARALLEL_WAITS),
    )


MAX_TEXT_FILE_BYTES = 1024 * 1024  # any other text read from a file or stdin


def read_text(path: str, what: str, limit: int = MAX_TEXT_FILE_BYTES) -> str:
    """A UTF-8 text file, or stdin for `-`, of at most `limit` bytes (so /dev/zero or an
    endless pipe ends at once); each way it can fail is a one-line UsageError."""
    try:
        if path == "-":
            data = sys.stdin.buffer.read(limit + 1)
        else:
            with open(path, "rb") as handle:
                data = handle.read(limit + 1)
        if len(data) > limit:
            shown = "stdin" if path == "-" else path
            raise UsageError(f"{what} is larger than {limit:,} bytes: {shown}")
    except FileNotFoundError:
        raise UsageError(f"no such {what}: {path}") from None
    except IsADirectoryError:
        raise UsageError(f"{what} is a directory: {path}") from None
    except OSError as error:
        raise UsageError(f"cannot read {what} {path}: {error.strerror}") from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise UsageError(f"{what} is not UTF-8 text: {path}") from None


def check_upload_paths(rc, paths) -> None:
    """Refuse every bad path before the first byte is uploaded."""
    for path in paths or ():
        rc.check_upload_path(path)


def confirm(question: str, *, yes: bool) -> None:
    """Go on only when the user said so: --yes, or `y` to a question on the terminal.

    Off a terminal, without --yes, refuse before anything is sent, as gh's
    `repo delete` does: an agent never runs interactively, so it must confirm
    with its user and then say --yes.
    """
    if yes:
        return
    if not sys.stdin.isatty():
        raise UsageError(
            "--yes required when not running interactively: confirm with the user, then pass --yes"
        )
    sys.stderr.write(f"{question}? [y/N] ")
    sys.stderr.flush()
    if sys.stdin.readline().strip().lower() not in ("y", "yes"):
        raise TaskOutcome(EXIT_USAGE, "not confirmed; nothing was sent")


def delete_many(rc, out: Output, ids, delete, noun: str) -> int:
    """`delete(id)` for each id, the others going on when one fails; print what was deleted.

    One id: its error is raised (one line, its exit code). Several: each failure is
    reported in its entry and on stderr, and the worst exit code is returned. A task or
    computer deleted is noted in the local record.
    """
    from rebyte import record

    documents, errors = [], []
    for item_id in ids:
        try:
            delete(item_id)
            if noun in ("task", "computer"):  # `recent` then says it is gone
                record.note(item_id, kind=noun, deleted=True)
            documents.append({"id": item_id, "deleted": True})
        except rc.RebyteError as error:
            if len(ids) == 1:
                raise
            errors.append(error)
            out.error(f"{noun} {item_id}: {explain(rc, error)}")
            documents.append({"id": item_id, "deleted": False, "error": one_line(str(error))})
    out.result(
        documents[0] if len(documents) == 1 else documents,
        [doc["id"] for doc in documents if doc["deleted"]],
    )
    return worst_exit([exit_code_for(rc, e) for e in errors])


def send_recorded(send, kind: str, host: str, **fields) -> dict:
    """Run a create with its pending line written first, then completed by its answer (or
    marked failed when it certainly made nothing; an unknown outcome stays pending)."""
    from rebyte import record

    rc = load_client_module()
    ref = record.begin(kind, host, **fields)
    try:
        made = send()
    except rc.RebyteError as error:
        if certainly_not_sent(rc, error):
            record.failed(ref, kind)
        raise
    record.created(ref, kind, made)
    return made


def workspace_for(client, target: str, given=None) -> str:
    """The workspace of a task (or a workspace id itself): `given` (--workspace, or the
    create answer the command holds), else the local record, else the task view; a task
    whose workspace none of them knows is a WorkspaceUnknownError (see explain)."""
    from rebyte import record

    rc = load_client_module()
    if given:
        return rc.check_id(given, "workspace id")
    return client.tasks.workspace_of(target, known=record.workspace_of(target))


def api_host(client) -> str:
    import urllib.parse

    return urllib.parse.urlsplit(client.base_url).hostname or ""


def certainly_not_sent(rc, error: BaseException) -> bool:
    """Did this error leave the server with nothing made? (Unknown outcomes did not.)"""
    if isinstance(error, rc.OutcomeUnknownError):
        return False
    if isinstance(error, rc.APIConnectionError):
        return not error.maybe_sent
    return isinstance(error, (rc.InputError, rc.ConfigurationError, rc.APIError))


COMPUTER_WAIT_TIMEOUT = 600.0


def create_computer(client, out: Output, run: Run, *, name=None, icon=None) -> dict:
    """Create an Agent Computer and say its id on stderr at once, even with -q: it
    outlives this command, so an interrupted run must leave nothing unknown."""
    with run.sending("computer_create"):
        computer = send_recorded(
            lambda: client.computers.create(name=name, icon=icon),
            "computer",
            api_host(client),
            name=name,
        )
    run.remember_computer(computer["id"])
    out._stderr(
        f"computer {computer['id']} created ({computer.get('status')}); it keeps existing "
        f"until deleted: {RUN} computer delete {computer['id']} --yes"
    )
    return computer


def wait_for_computer(client, out: Output, computer_id: str, *, timeout, interval=2.0) -> dict:
    """Wait until the computer is ready (ProvisionError if it ends in error)."""

    def seen(computer: dict) -> None:
        out.progress(f"computer {computer_id}: {computer.get('status')}")

    return client.computers.wait(
        computer_id, timeout=timeout, poll_interval=interval, on_status=seen
    )
