"""The local record: what this machine started on Rebyte, so that no id is ever lost.

The documented API shows a task's `workspaceId` only in the answer to its create,
and a create killed half-way (a shell time limit, kill -9, a lost connection)
leaves no id at all. So each create is written down here *before* it is sent
(a pending line) and completed when its answer comes. Later commands read it to
find a task's workspace, to warn before a create is repeated, and to tell which
creates never got an answer.

One JSON object per line in `$XDG_STATE_HOME/skill-as-a-service/record.jsonl`
(else `~/.local/state/...`), mode 0600. Every write takes an exclusive lock on a
lock file beside it and appends one line, so `batch` threads and other processes
never interleave; past MAX_RECORD_BYTES the oldest lines are dropped. Nothing
secret is written: never the key, never a signed URL, of the prompt only its
first PROMPT_START_CHARS characters and a hash of the whole.
`REBYTE_RECORD=off` turns it off. A library: it never prints; a record that
cannot be written is skipped silently (it helps, it must never stop a create).
"""

from __future__ import annotations

import contextlib
import datetime
import json
import os
import threading
from typing import Any, Dict, Iterator, List, Optional

RECORD_ENV = "REBYTE_RECORD"
STATE_FOLDER = "skill-as-a-service"
RECORD_NAME = "record.jsonl"
MAX_RECORD_BYTES = 1024 * 1024
KEEP_AFTER_TRIM = MAX_RECORD_BYTES // 2
PROMPT_START_CHARS = 60
MAX_LINE_BYTES = 8 * 1024
# A repeated create within this many seconds of an unanswered one is warned about.
RECENT_PENDING_SECONDS = 600.0

_OFF_WORDS = frozenset({"0", "off", "no", "false"})
_thread_lock = threading.Lock()  # flock is per open file: threads of one process need this too


def record_dir() -> str:
    state = os.environ.get("XDG_STATE_HOME") or ""
    if not os.path.isabs(state):  # the XDG spec: a relative value is to be ignored
        state = os.path.join(os.path.expanduser("~"), ".local", "state")
    return os.path.join(state, STATE_FOLDER)


def record_path() -> str:
    return os.path.join(record_dir(), RECORD_NAME)


def enabled() -> bool:
    return os.environ.get(RECORD_ENV, "").strip().lower() not in _OFF_WORDS


def now_iso() -> str:
    moment = datetime.datetime.now(datetime.timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def parse_iso(text: Any) -> Optional[float]:
    """Seconds since the epoch of an ISO 8601 UTC time (the API's and ours), else None."""
    if not isinstance(text, str) or not text:
        return None
    try:
        moment = datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=datetime.timezone.utc)
    return moment.timestamp()


def prompt_fingerprint(prompt: str) -> Dict[str, str]:
    """What the record keeps of a prompt: its start, one line, and a hash of the whole."""
    import hashlib  # here, not at import: the CLI's start-up stays quick

    start = " ".join(prompt.split())[:PROMPT_START_CHARS]
    digest = hashlib.sha256(prompt.encode("utf-8", errors="replace")).hexdigest()
    return {"prompt": start, "promptHash": digest}


def new_ref() -> str:
    import uuid

    return uuid.uuid4().hex[:16]


def append(entry: Dict[str, Any]) -> bool:
    """Append one line (with its time); False when the record is off or cannot be written."""
    if not enabled():
        return False
    line = json.dumps({"at": now_iso(), **entry}, ensure_ascii=False, separators=(",", ":"))
    data = (line + "\n").encode("utf-8", errors="replace")
    if len(data) > MAX_LINE_BYTES:
        return False
    try:
        with _locked():
            path = record_path()
            fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            try:
                os.write(fd, data)
                size = os.fstat(fd).st_size
            finally:
                os.close(fd)
            if size > MAX_RECORD_BYTES:
                _trim(path)
    except OSError:
        return False
    return True


def read_entries() -> List[Dict[str, Any]]:
    """Every line of the record, oldest first; lines that are not JSON objects are skipped."""
    try:
        with open(record_path(), "rb") as handle:
            data = handle.read(MAX_RECORD_BYTES * 2)
    except OSError:
        return []
    entries = []
    for raw in data.splitlines():
        try:
            entry = json.loads(raw.decode("utf-8", errors="replace"))
        except ValueError:
            continue
        if isinstance(entry, dict):
            entries.append(entry)
    return entries


@contextlib.contextmanager
def _locked() -> Iterator[None]:
    folder = record_dir()
    os.makedirs(folder, mode=0o700, exist_ok=True)
    with _thread_lock:
        fd = os.open(os.path.join(folder, "record.lock"), os.O_RDWR | os.O_CREAT, 0o600)
        try:
            _lock_file(fd)
            yield
        finally:
            os.close(fd)  # closing releases the lock


def _lock_file(fd: int) -> None:
    try:
        import fcntl
    except ImportError:  # Windows: the thread lock alone; one process at a time is the norm
        return
    fcntl.flock(fd, fcntl.LOCK_EX)


def _trim(path: str) -> None:
    """Keep the newest whole lines that fit in KEEP_AFTER_TRIM bytes (called under the lock)."""
    import tempfile

    with open(path, "rb") as handle:
        data = handle.read()
    kept = data[-KEEP_AFTER_TRIM:]
    cut = kept.find(b"\n")
    kept = kept[cut + 1 :] if cut >= 0 and len(data) > KEEP_AFTER_TRIM else kept
    fd, temporary = tempfile.mkstemp(dir=os.path.dirname(path), prefix=".record-")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(kept)
        os.chmod(temporary, 0o600)
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise


# ------------------------------------------------------------------ what the lines mean
#
# kind "task" or "computer"; event "pending" (written before the create is sent, with a
# fresh `ref`), then "created" (the same ref, with id, workspaceId, url) or "failed" (the
# create certainly made nothing). A pending line never completed is a create whose
# answer never came: it may or may not have made something.


def begin(kind: str, host: str, **fields: Any) -> str:
    """Write the pending line of a create about to be sent; returns its ref."""
    ref = new_ref()
    append({"kind": kind, "event": "pending", "ref": ref, "host": host, **_present(fields)})
    return ref


def created(ref: str, kind: str, thing: Dict[str, Any]) -> None:
    """Complete a pending create with what its answer says."""
    fields = {name: thing.get(name) for name in ("id", "workspaceId", "url", "name")}
    append({"kind": kind, "event": "created", "ref": ref, **_present(fields)})


def failed(ref: str, kind: str) -> None:
    """A create that certainly made nothing (refused, or never sent)."""
    append({"kind": kind, "event": "failed", "ref": ref})


def note(item_id: str, kind: str = "task", **fields: Any) -> None:
    """More about a task (or computer) this machine knows: a follow-up, the snapshot it was
    given, that it was deleted."""
    append({"kind": kind, "event": "note", "id": item_id, **_present(fields)})


def creates() -> List[Dict[str, Any]]:
    """Each create of the record, newest first: its pending line merged with what followed
    (`state` is "created", "failed" or "pending"), plus lines naming an id with no ref."""
    by_ref: Dict[str, Dict[str, Any]] = {}
    notes: Dict[str, Dict[str, Any]] = {}
    order: List[str] = []
    for entry in read_entries():
        ref, event = entry.get("ref"), entry.get("event")
        if event == "note" and isinstance(entry.get("id"), str):
            notes.setdefault(entry["id"], {}).update(_without(entry, "at", "event", "kind"))
            continue
        if not isinstance(ref, str):
            continue
        if ref not in by_ref:
            by_ref[ref] = {"state": "pending"}
            order.append(ref)
        merged = by_ref[ref]
        if event == "pending":
            merged.update(_without(entry, "event"), state=merged["state"])
        elif event in ("created", "failed"):
            merged.update(_without(entry, "event", "at"), state=event)
            merged["answeredAt"] = entry.get("at")
    result = []
    for ref in reversed(order):
        merged = by_ref[ref]
        extra = notes.get(merged.get("id") or "", {})
        result.append({**extra, **merged} if extra else merged)
    return result


def find_task(task_id: str) -> Optional[Dict[str, Any]]:
    """What the record knows of a task: its create (newest first) merged with its notes."""
    for entry in creates():
        if entry.get("id") == task_id:
            return entry
    return None


def workspace_of(task_id: str) -> Optional[str]:
    return workspace_in(find_task(task_id))


def workspace_in(entry: Optional[Dict[str, Any]]) -> Optional[str]:
    """The workspace id a record entry (of find_task) holds, if it holds one."""
    workspace = (entry or {}).get("workspaceId")
    return workspace if isinstance(workspace, str) and workspace else None


def unanswered_like(host: str, prompt_hash: str, within: float = RECENT_PENDING_SECONDS):
    """Pending creates of the same prompt on the same host, younger than `within` seconds."""
    now = parse_iso(now_iso()) or 0.0
    found = []
    for entry in creates():
        at = parse_iso(entry.get("at"))
        if (
            entry.get("state") == "pending"
            and entry.get("host") == host
            and entry.get("promptHash") == prompt_hash
            and at is not None
            and now - at <= within
        ):
            found.append(entry)
    return found


def _present(fields: Dict[str, Any]) -> Dict[str, Any]:
    return {name: value for name, value in fields.items() if value is not None}


def _without(entry: Dict[str, Any], *names: str) -> Dict[str, Any]:
    return {key: value for key, value in entry.items() if key not in names}
