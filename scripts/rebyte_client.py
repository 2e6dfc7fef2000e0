"""Python client for Rebyte's v1 task API: spawn cloud coding-agent tasks and follow them.

    from rebyte_client import RebyteClient
    client = RebyteClient()                      # key from REBYTE_API_KEY
    task = client.create_task("Add unit tests", skills=["deep-research"])
    print(task["url"])                           # live at once: give it to the user
    done = client.wait_for_task(task["id"])
    print(done["status"], client.get_result(task["id"]))

A library: it never prints or exits. Every failure is a subclass of `RebyteError`.
Only `requests` is needed, and it is imported on first use, so importing this
module (for its errors or validators) costs nothing.
"""

from __future__ import annotations

import contextlib
import email.utils
import hashlib
import ipaddress
import json
import logging
import mimetypes
import os
import queue
import random
import re
import threading
import time
import urllib.parse
from typing import (
    Any,
    Callable,
    ContextManager,
    Dict,
    Iterable,
    Iterator,
    List,
    Optional,
    Tuple,
    TypeVar,
)

__version__ = "0.1.0"

__all__ = [
    "RebyteClient",
    "RebyteError",
    "InputError",
    "ConfigurationError",
    "APIError",
    "AuthenticationError",
    "NotFoundError",
    "ValidationError",
    "RateLimitError",
    "ServerError",
    "UploadError",
    "MalformedResponseError",
    "APIConnectionError",
    "APITimeoutError",
    "OutcomeUnknownError",
    "WaitTimeoutError",
    "ProvisionError",
    "normalize_github_repo",
    "check_prompt",
    "check_id",
    "check_task_id",
    "check_upload_path",
    "safe_artifact_path",
    "ArtifactsRefusedError",
    "WorkspaceUnknownError",
    "SMALL_ARTIFACT_BYTES",
    "is_terminal",
    "DEFAULT_BASE_URL",
    "API_KEY_URL",
    "API_KEY_ENV",
    "WEBHOOK_EVENTS",
    "COMPUTER_STATUSES",
]

DEFAULT_BASE_URL = "https://api.rebyte.ai/v1"
API_KEY_URL = "https://app.rebyte.ai/settings/api-keys"
# The environment variable the key is read from; named once, for messages and docs too.
API_KEY_ENV = "REBYTE_API_KEY"

MAX_PROMPT_CHARS = 100_000
MAX_FILENAME_CHARS = 255
MAX_ID_CHARS = 128
MAX_TASK_ID_CHARS = MAX_ID_CHARS
MAX_PAGE_SIZE = 100
# A listing stops with an error past this many items, or past the first page's total
# plus LIST_SLACK (what may be created while it runs): a server's pages may never end.
MAX_LIST_ITEMS = 100_000
LIST_SLACK = 1_000
VISIBILITIES = ("private", "shared", "public")
EXECUTORS = ("opencode", "claude", "gemini", "codex")
TASK_TERMINAL_STATUSES = frozenset({"completed", "failed", "canceled"})
PROMPT_TERMINAL_STATUSES = frozenset({"succeeded", "failed", "canceled"})
COMPUTER_STATUSES = ("provisioning", "ready", "error")
MAX_COMPUTER_NAME_CHARS = 200
MAX_COMPUTER_ICON_CHARS = 50
DEFAULT_COMPUTER_WAIT_TIMEOUT = 600.0
WEBHOOK_EVENTS = ("task.created", "task.running", "task.completed", "task.failed", "task.canceled")
MAX_WEBHOOK_TEXT_CHARS = 500
MAX_WEBHOOK_URL_CHARS = 2048

DEFAULT_CONNECT_TIMEOUT = 10.0
DEFAULT_READ_TIMEOUT = 60.0
DEFAULT_CREATE_TIMEOUT = 600.0
DEFAULT_MAX_RETRIES = 2
DEFAULT_WAIT_TIMEOUT = 3600.0
FINAL_POLL_GRACE = 2.0
# How long a succeeded prompt without its answer is read again (the answer can lag its status).
RESULT_SETTLE_SECONDS = 3.0
RESULT_SETTLE_FIRST_DELAY = 0.25
# Polling in place of an event stream that a server does not have.
POLLED_EVENTS_FIRST_DELAY = 2.0
POLLED_EVENTS_MAX_DELAY = 10.0

# Retry pacing, after the OpenAI and Anthropic SDKs: 0.5 s doubling to 8 s, with jitter.
INITIAL_RETRY_DELAY = 0.5
MAX_RETRY_DELAY = 8.0
MAX_RETRY_AFTER = 60.0

RETRYABLE_STATUSES = frozenset({408, 429, 500, 502, 503, 504})
REQUEST_ID_HEADERS = ("x-request-id", "request-id", "x-rebyte-request-id")
UPLOAD_CHUNK_BYTES = 1024 * 1024
# The largest API answer read (a task with its prompts is a few KiB; a list page, some 100).
MAX_ANSWER_BYTES = 32 * 1024 * 1024
ANSWER_CHUNK_BYTES = 64 * 1024
WATCHDOG_TICK = 0.25
# The largest server-sent event (or line of one) taken from an event stream.
MAX_EVENT_BYTES = 16 * 1024 * 1024
# Artifacts up to this size go in one multipart POST; larger ones through a signed upload URL.
SMALL_ARTIFACT_BYTES = 8 * 1024 * 1024
MULTIPART_PART_OVERHEAD = 1024  # a part's headers and boundary, generously
MAX_DOWNLOAD_REDIRECTS = 3
_REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
MAX_NAME_BYTES = 255  # of one path component, on the usual local file systems

logger = logging.getLogger("rebyte")


# --------------------------------------------------------------------------- errors


class RebyteError(Exception):
    """Base of every error this client raises."""


class InputError(RebyteError, ValueError):
    """A bad argument, caught before anything was sent."""


class ArtifactsRefusedError(InputError):
    """Artifacts that cannot be downloaded safely; nothing was downloaded.

    `refused` lists (name, reason) for each: a name that would escape the
    destination or that the file system refuses, two names for one local
    file, or a file that exists already.
    """

    def __init__(self, refused: List[Tuple[str, str]], existing: Iterable[str] = ()) -> None:
        self.refused = list(refused)
        # The names refused only because their local file exists (see `overwrite`).
        self.existing = list(existing)
        shown = "; ".join(f"{name!r}: {reason}" for name, reason in self.refused[:5])
        more = f" (and {len(self.refused) - 5} more)" if len(self.refused) > 5 else ""
        super().__init__(f"{len(self.refused)} artifact(s) refused: {shown}{more}")


class WorkspaceUnknownError(InputError):
    """The workspace of a task is not known here: the API shows it only in the create answer."""

    def __init__(self, task_id: str) -> None:
        self.task_id = task_id
        super().__init__(
            f"the workspace of task {task_id} is unknown: the API gives a task's workspaceId "
            "only in its create answer, and this task's was not kept"
        )


class ConfigurationError(RebyteError):
    """No usable API key or base URL: nothing was sent."""


class APIError(RebyteError):
    """The API (or the storage host) answered with an error."""

    def __init__(
        self,
        message: str,
        *,
        status: Optional[int] = None,
        code: Optional[str] = None,
        request_id: Optional[str] = None,
        method: Optional[str] = None,
        url: Optional[str] = None,
        resource: Optional[str] = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.code = code
        self.request_id = request_id
        self.method = method
        self.url = url
        # The noun of the one resource the request path names ("task", ...); None for a collection.
        self.resource = resource

    def __str__(self) -> str:
        details = [f"HTTP {self.status}"] if self.status else []
        if self.code:
            details.append(self.code)
        if self.request_id:
            details.append(f"request id {self.request_id}")
        return f"{self.message} ({', '.join(details)})" if details else self.message


class AuthenticationError(APIError):
    """401 or 403: the key is missing, wrong, or lacks a scope."""


class NotFoundError(APIError):
    """404: no such resource (`resource` says which kind), or no such route (`resource` None)."""


class ValidationError(APIError):
    """400 or 422: the API rejected the request's content."""


class RateLimitError(APIError):
    """429 after the allowed retries; `retry_after` is the server's hint in seconds."""

    def __init__(self, message: str, *, retry_after: Optional[float] = None, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.retry_after = retry_after


class ServerError(APIError):
    """5xx after the allowed retries."""


class UploadError(APIError):
    """The storage host refused the file (often an expired upload URL)."""


class MalformedResponseError(APIError):
    """A success status with a body that is not what the contract promises."""


class APIConnectionError(RebyteError):
    """The server could not be reached or the connection broke.

    `maybe_sent` is False only when no connection was ever made, so the
    server cannot have seen the request.
    """

    def __init__(self, message: str, *, maybe_sent: bool = True) -> None:
        super().__init__(message)
        self.maybe_sent = maybe_sent


class APITimeoutError(APIConnectionError):
    """No answer within the configured timeout."""


class OutcomeUnknownError(RebyteError):
    """A create or follow-up failed after the server may have acted on it.

    It is not retried, since a second try could start a second VM or run the
    prompt twice. `hint` says in library terms how to check what happened;
    `operation` ("create_task", "follow_up", ...) and `resource_id` let a caller
    word its own advice.
    """

    def __init__(
        self,
        message: str,
        *,
        hint: str,
        cause: Optional[BaseException] = None,
        operation: str,
        resource_id: Optional[str] = None,
    ) -> None:
        super().__init__(f"{message}; {hint}")
        self.message = message
        self.hint = hint
        self.cause = cause
        self.operation = operation
        self.resource_id = resource_id


class WaitTimeoutError(RebyteError):
    """The wait ran out while the task (or prompt) was still running.

    `resource` is the kind of thing waited on and `resource_id` its id; for a
    task, `task_id` is that id too.
    """

    def __init__(
        self,
        message: str,
        *,
        task_id: Optional[str] = None,
        prompt_id: Optional[str] = None,
        last_task: Optional[dict] = None,
        last_error: Optional[BaseException] = None,
        resource: str = "task",
        resource_id: Optional[str] = None,
    ) -> None:
        super().__init__(message)
        self.resource = resource
        self.resource_id = resource_id if resource_id is not None else task_id
        self.task_id = task_id
        self.prompt_id = prompt_id
        self.last_task = last_task
        self.last_error = last_error


class ProvisionError(RebyteError):
    """An Agent Computer ended in `error` instead of `ready`.

    `computer` is the last object seen; `provision_error` the server's reason
    (None when it gave none).
    """

    def __init__(self, message: str, *, computer: dict, provision_error: Optional[str]) -> None:
        super().__init__(message)
        self.computer = computer
        self.provision_error = provision_error


# ----------------------------------------------------------------------- validation


_GITHUB_OWNER = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,38})"
_GITHUB_REPO = r"[A-Za-z0-9._-]{1,100}"
_GITHUB_SHORT = re.compile(rf"({_GITHUB_OWNER})/({_GITHUB_REPO})")
_GITHUB_URL = re.compile(
    rf"(?:https?://)?(?:www\.)?github\.com/({_GITHUB_OWNER})/({_GITHUB_REPO}?)(?:\.git)?/?"
)
_CONTROL_OR_SPACE = re.compile(r"[\x00-\x20\x7f]")
_PRINTABLE_ASCII = re.compile(r"[\x21-\x7e]+")
# The longest timeout taken (30 days): beyond, a number is a mistake, and 1e300 or
# inf would overflow the clocks and timers underneath.
MAX_TIMEOUT_SECONDS = 30 * 24 * 3600.0


def _is_text(value: str) -> bool:
    """False for a string with lone surrogates: bytes that were not UTF-8 (argv, environ)."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def normalize_github_repo(value: str) -> str:
    """Return `owner/repo` for `owner/repo` or a github.com URL; raise InputError otherwise."""
    if not isinstance(value, str) or not value.strip():
        raise InputError("GitHub repository must be given as owner/repo")
    text = value.strip()
    match = _GITHUB_SHORT.fullmatch(text) or _GITHUB_URL.fullmatch(text)
    if not match or match.group(2) in (".", "..", ""):
        raise InputError(
            f"not a GitHub repository: {value!r} (use owner/repo or https://github.com/owner/repo)"
        )
    return f"{match.group(1)}/{match.group(2)}"


def is_terminal(status: Optional[str]) -> bool:
    """True for a task or prompt status that will not change without a new prompt."""
    return status in TASK_TERMINAL_STATUSES or status in PROMPT_TERMINAL_STATUSES


def check_prompt(prompt: Any) -> str:
    """Return the prompt if the API would take it; raise InputError otherwise."""
    if not isinstance(prompt, str):
        raise InputError("prompt must be a string")
    if not prompt.strip():
        raise InputError("prompt is empty")
    if not _is_text(prompt):
        raise InputError("prompt is not UTF-8 text")
    if len(prompt) > MAX_PROMPT_CHARS:
        raise InputError(
            f"prompt is {len(prompt):,} characters; the API takes at most {MAX_PROMPT_CHARS:,}"
        )
    return prompt


def check_id(value: Any, what: str) -> str:
    """Reject ids that could never name a resource, and ids that would change the route.

    `what` names the id in the message ("task id", "computer id", ...).
    """
    if not isinstance(value, str) or not value:
        raise InputError(f"{what} is empty")
    if len(value) > MAX_ID_CHARS:
        raise InputError(f"{what} is longer than {MAX_ID_CHARS} characters")
    if _CONTROL_OR_SPACE.search(value):
        raise InputError(f"{what} {value!r} contains spaces or control characters")
    if not _is_text(value):
        raise InputError(f"{what} {ascii(value)} is not UTF-8 text")
    if value in (".", ".."):
        raise InputError(f"{what} {value!r} is not valid")
    return value


def check_task_id(task_id: Any) -> str:
    """Reject ids that could never name a task, and ids that would change the route."""
    return check_id(task_id, "task id")


def _check_string_list(values: Any, what: str) -> List[str]:
    if isinstance(values, str) or not isinstance(values, (list, tuple)):
        raise InputError(f"{what} must be a list of strings")
    for value in values:
        if not isinstance(value, str) or not value.strip():
            raise InputError(f"{what} must be non-empty strings, got {value!r}")
    return list(values)


def _check_file_refs(files: Any) -> List[Dict[str, str]]:
    if not isinstance(files, (list, tuple)):
        raise InputError('files must be a list of {"id", "filename"} from upload_file()')
    refs = []
    for ref in files:
        if not (
            isinstance(ref, dict)
            and isinstance(ref.get("id"), str)
            and ref.get("id")
            and isinstance(ref.get("filename"), str)
            and ref.get("filename")
        ):
            raise InputError(
                f'each file must be {{"id", "filename"}} as returned by upload_file(), got {ref!r}'
            )
        refs.append({"id": ref["id"], "filename": ref["filename"]})
    return refs


def _check_optional_string(value: Any, what: str) -> Optional[str]:
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip():
        raise InputError(f"{what} must be a non-empty string")
    return value


def _check_text(value: Any, what: str, limit: int) -> Optional[str]:
    """None, or a non-empty string of at most `limit` characters; the message never shows
    the value (it may be a secret)."""
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip():
        raise InputError(f"{what} must be a non-empty string")
    if len(value) > limit:
        raise InputError(f"{what} is {len(value):,} characters; the API takes at most {limit}")
    return value


def _check_webhook_url(url: Any) -> str:
    """An absolute https:// URL with a host: the API delivers only there."""
    if not isinstance(url, str) or not url.strip():
        raise InputError("webhook URL is empty")
    shown = _without_secrets(url)
    if len(url) > MAX_WEBHOOK_URL_CHARS:
        raise InputError(f"webhook URL is longer than {MAX_WEBHOOK_URL_CHARS} characters")
    try:
        parts = urllib.parse.urlsplit(url)
        host = parts.hostname
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError:
        raise InputError(f"malformed webhook URL: {shown!r}") from None
    if _CONTROL_OR_SPACE.search(url) or not host:
        raise InputError(f"malformed webhook URL: {shown!r}")
    if parts.scheme != "https":
        raise InputError(f"webhook URL must be https://, got {shown!r}")
    return url


def _check_webhook_events(events: Any) -> List[str]:
    try:
        events = None if isinstance(events, str) else list(events)
    except TypeError:
        events = None
    if not events:
        raise InputError(f"events must be a non-empty list of: {', '.join(WEBHOOK_EVENTS)}")
    unknown = [event for event in events if event not in WEBHOOK_EVENTS]
    if unknown:
        raise InputError(
            f"unknown webhook event {unknown[0]!r}; known: {', '.join(WEBHOOK_EVENTS)}"
        )
    return list(dict.fromkeys(events))


def _check_int(value: Any, what: str, low: int, high: Optional[int] = None) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise InputError(f"{what} must be a whole number, got {value!r}")
    if value < low or (high is not None and value > high):
        bounds = f"from {low} to {high}" if high is not None else f"at least {low}"
        raise InputError(f"{what} must be {bounds}, got {value}")
    return value


def check_upload_path(path: Any) -> Tuple[str, str, int]:
    """Return (path, file name, size) of a regular, readable file with an acceptable name."""
    if not isinstance(path, (str, os.PathLike)) or not os.fspath(path):
        raise InputError("file path is empty")
    path = os.fspath(path)
    name = os.path.basename(path)
    # First: such a name cannot exist on most file systems, so "no such file" would mislead.
    if len(name) > MAX_FILENAME_CHARS:
        raise InputError(f"file name is {len(name)} characters; the API takes at most 255")
    if not os.path.exists(path):
        raise InputError(f"no such file: {path}")
    if not os.path.isfile(path):
        raise InputError(f"not a regular file: {path}")
    if not os.access(path, os.R_OK):
        raise InputError(f"file is not readable: {path}")
    return path, name, os.path.getsize(path)


_UNSAFE_NAME_CHARS = re.compile(r"[\x00-\x1f\x7f-\x9f\\]")


def safe_artifact_path(dest_dir: str | os.PathLike[str], name: Any) -> str:
    """The local path for a server-given artifact name, inside `dest_dir`.

    The name is untrusted. Refused (InputError): absolute names, `.` or `..`
    segments, empty segments, backslashes, NUL and control characters, a
    component the file system would refuse (over 255 bytes), and any name
    whose resolved path leaves `dest_dir`, symlinked folders inside it
    included. `reports/q1.pdf` keeps its folder: `dest_dir/reports/q1.pdf`.
    """
    if not isinstance(name, str) or not name:
        raise InputError("artifact name is empty")
    shown = repr(name) if len(name) <= 80 else repr(name[:80]) + "…"
    if _UNSAFE_NAME_CHARS.search(name):
        raise InputError(f"artifact name {shown} contains a backslash or control characters")
    if name.startswith("/") or re.match(r"[A-Za-z]:", name):
        raise InputError(f"artifact name {shown} is an absolute path")
    segments = name.split("/")
    for segment in segments:
        if segment in ("", ".", ".."):
            raise InputError(f"artifact name {shown} has an empty, '.' or '..' segment")
        if os.name == "nt" and _refused_by_windows(segment):
            raise InputError(f"artifact name {shown} is not a valid file name on Windows")
        if len(segment.encode("utf-8", errors="surrogatepass")) > MAX_NAME_BYTES:
            raise InputError(f"artifact name {shown} has a part longer than {MAX_NAME_BYTES} bytes")
    dest = os.fspath(dest_dir) or "."
    root = os.path.realpath(dest)
    resolved = os.path.realpath(os.path.join(root, *segments))
    if os.path.commonpath([root, resolved]) != root or resolved == root:
        raise InputError(f"artifact name {shown} leads outside {dest}")
    return os.path.join(*segments) if dest == "." else os.path.join(dest, *segments)


_WINDOWS_DEVICES = re.compile(r"(?i)(con|prn|aux|nul|com[0-9]|lpt[0-9])(\..*)?")


def _refused_by_windows(segment: str) -> bool:
    """Names Windows will not create, or would silently change (`a.` is `a`)."""
    return bool(
        re.search(r'[<>:"|?*]', segment)
        or segment.endswith((".", " "))
        or _WINDOWS_DEVICES.fullmatch(segment)
    )


def _plan_artifact_paths(dest_dir: Any, names: List[str]) -> Tuple[list, list]:
    """([(name, local path)], [(name, reason)]): each name checked, and no two on one file.

    Two names collide when their paths are equal ignoring case and Unicode
    normalization (as on macOS and Windows), or when one needs the other as a
    folder; every name of a collision is refused.
    """
    import unicodedata  # noqa: PLC0415 - only for downloads

    def key(path: str) -> str:
        return unicodedata.normalize("NFC", os.path.normcase(path)).casefold()

    planned, refused = [], []
    for name in dict.fromkeys(names):
        try:
            planned.append((name, safe_artifact_path(dest_dir, name)))
        except InputError as error:
            refused.append((name, str(error)))
    owners: Dict[str, List[str]] = {}
    for name, _ in planned:
        owners.setdefault(key(name), []).append(name)
    folders: Dict[str, List[str]] = {}  # a folder some name needs -> those names
    for name, _ in planned:
        parts = name.split("/")
        for depth in range(1, len(parts)):
            folders.setdefault(key("/".join(parts[:depth])), []).append(name)
    clashing = set()
    for own, names_here in owners.items():
        if len(names_here) > 1 or own in folders:
            clashing.update(names_here)
            clashing.update(folders.get(own, ()))
    for name, path in planned:
        if name in clashing:
            refused.append((name, f"another artifact maps to the same local path {path}"))
    return [(n, p) for n, p in planned if n not in clashing], refused


def _refuse_existing(path: str, overwrite: bool) -> None:
    if os.path.isdir(path):
        raise InputError(f"{path} is a folder; not overwritten")
    if os.path.lexists(path) and not overwrite:
        raise InputError(f"{path} exists already (overwrite it with overwrite=True / --overwrite)")


def _artifact_segment(name: Any) -> str:
    """An artifact name as one URL path segment (`/` too is escaped, as %2F)."""
    if not isinstance(name, str) or not name:
        raise InputError("artifact name is empty")
    if name in (".", "..") or "\x00" in name:
        raise InputError(f"artifact name {name!r} is not valid")
    return urllib.parse.quote(name, safe="")


# --------------------------------------------------------------------- configuration


def _env_float(name: str, default: float, *, allow_zero: bool = False) -> float:
    raw = os.environ.get(name)
    if raw is None or not raw.strip():
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ConfigurationError(f"{name} must be a number of seconds, got {raw!r}") from None
    if not (0 <= value if allow_zero else 0 < value) or not value <= MAX_TIMEOUT_SECONDS:
        least = "0 or more" if allow_zero else "more than 0"
        raise ConfigurationError(  # nan fails both tests
            f"{name} must be {least} and at most {MAX_TIMEOUT_SECONDS:g} seconds, got {raw!r}"
        )
    return value


def _env_int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None or not raw.strip():
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigurationError(f"{name} must be a whole number, got {raw!r}") from None
    if value < 0:
        raise ConfigurationError(f"{name} must be 0 or more, got {raw!r}")
    return value


def _check_positive(
    value: Any, what: str, error: type = ConfigurationError, *, allow_zero: bool = False
) -> float:
    low_ok = (lambda v: 0 <= v) if allow_zero else (lambda v: 0 < v)
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        or not (low_ok(value) and value <= MAX_TIMEOUT_SECONDS)
    ):
        kind = "a number of seconds, 0 or more" if allow_zero else "a positive number of seconds"
        raise error(f"{what} must be {kind}, at most {MAX_TIMEOUT_SECONDS:g}, got {value!r}")
    return float(value)


def _is_loopback(host: str) -> bool:
    if host.lower() == "localhost" or host.lower().endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _check_base_url(url: Any) -> str:
    """Accept https anywhere, plain http only on loopback: the key must not travel in clear."""
    if not isinstance(url, str) or not url.strip():
        raise ConfigurationError("base URL is empty")
    text = url.strip()
    shown = _without_secrets(text)  # a key pasted into the URL must not show in the error
    try:
        parts = urllib.parse.urlsplit(text)
        host = parts.hostname
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError:
        raise ConfigurationError(f"malformed base URL: {shown!r}") from None
    if parts.scheme not in ("http", "https") or not host:
        raise ConfigurationError(
            f"malformed base URL: {shown!r} (expected e.g. {DEFAULT_BASE_URL})"
        )
    if parts.query or parts.fragment or parts.username or parts.password:
        raise ConfigurationError(
            f"base URL must not carry a query, fragment or credentials: {shown!r}"
        )
    if parts.scheme == "http" and not _is_loopback(host):
        raise ConfigurationError(
            f"refusing plain http:// to {host}: the API key would cross the network "
            "unencrypted; use https:// (http:// is allowed only for loopback hosts)"
        )
    return text.rstrip("/")


def _check_api_key(key: Any) -> str:
    if key is None or (isinstance(key, str) and not key.strip()):
        raise ConfigurationError(
            f"no API key: set {API_KEY_ENV} (get a key at {API_KEY_URL}, then "
            f'export {API_KEY_ENV}="rbk_...")'
        )
    if not isinstance(key, str) or _CONTROL_OR_SPACE.search(key.strip()):
        raise ConfigurationError(
            f"the API key contains spaces or control characters; copy it again from {API_KEY_URL}"
        )
    if not _PRINTABLE_ASCII.fullmatch(key.strip()):
        # A zero-width space, U+2028 or an emoji pasted along, or bytes that are not UTF-8:
        # no key holds them, and an HTTP header could not carry them.
        raise ConfigurationError(
            "the API key contains characters no key has (invisible or non-ASCII ones); "
            f"copy it again from {API_KEY_URL}"
        )
    return key.strip()


def _redact_key(key: str) -> str:
    return f"{key[:4]}…redacted" if len(key) > 8 else "…redacted"


def _without_secrets(url: str) -> str:
    """The URL as text, its user info, query and fragment (where secrets hide) blanked."""
    text = re.sub(r"(?<=//)[^/?#]*@", "…@", url, count=1)
    return re.sub(r"[?#].*", lambda match: match.group()[0] + "…", text, count=1, flags=re.DOTALL)


def _check_storage_url(url: Any) -> str:
    """A URL the server names for bytes (a signed upload or download URL) must be
    absolute https (plain http only on loopback); else the answer is malformed."""
    try:
        parts = urllib.parse.urlsplit(url) if isinstance(url, str) else None
        host = parts.hostname if parts is not None else None
    except ValueError:
        parts, host = None, None
    if (
        parts is None
        or not host
        or not (parts.scheme == "https" or (parts.scheme == "http" and _is_loopback(host)))
    ):
        shown = _without_secrets(url) if isinstance(url, str) else _kind_of(url)
        raise MalformedResponseError(
            f"the server named an upload or download URL that is not https: {shown[:200]!r}",
            status=None,
        )
    return url


def _ca_bundle_from_env() -> Optional[str]:
    """The CA bundle a TLS-inspecting proxy's users point to, as requests would read it."""
    for name in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "SSL_CERT_FILE"):
        value = os.environ.get(name)
        if value and value.strip():
            return value.strip()
    return None


def _without_query(url: str) -> str:
    """Drop the query: an upload URL's signature is a credential too."""
    parts = urllib.parse.urlsplit(url)
    return urllib.parse.urlunsplit((parts.scheme, parts.netloc, parts.path, "", ""))


def _retry_after_seconds(value: Optional[str], now: Optional[float] = None) -> Optional[float]:
    """Parse Retry-After as seconds or an HTTP date; None when absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when is None:
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


def _import_requests() -> Any:
    try:
        import requests  # noqa: PLC0415 - kept lazy so that start-up stays fast
    except ImportError:
        raise ImportError(
            "the Rebyte client needs the 'requests' package: python3 -m pip install requests"
        ) from None
    return requests


# ------------------------------------------------------------------- the transport


class _ProgressReader:
    """A file wrapper that reports bytes read, so an upload can show progress without buffering."""

    def __init__(
        self, handle: Any, total: int, progress: Optional[Callable[[int, int], None]]
    ) -> None:
        self._handle = handle
        self._total = total
        self._sent = 0
        self._progress = progress

    def __len__(self) -> int:
        return self._total

    def read(self, size: int = -1) -> bytes:
        # Large reads whatever the transport asks for: fewer system calls, same memory bound;
        # never past the size announced in Content-Length.
        left = self._total - self._sent
        if left <= 0:
            return b""
        chunk = self._handle.read(min(left, max(size, UPLOAD_CHUNK_BYTES)))
        if not chunk:
            # Shrunk since it was measured: the server would wait for the missing bytes.
            raise InputError(
                f"the file changed while it was being uploaded: it ended after "
                f"{self._sent:,} of {self._total:,} bytes"
            )
        self._sent += len(chunk)
        if self._progress is not None:
            self._progress(self._sent, self._total)
        return chunk


class _Abandon:
    """Set by the caller that gave up on an attempt: the attempt's answer, once it has
    one, gets its socket shut, so the helper thread stops reading at once."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._set = False
        self._response: Any = None

    def is_set(self) -> bool:
        return self._set

    def watch(self, response: Any) -> None:
        with self._lock:
            self._response = response
            if self._set:
                _shut(response)

    def set(self) -> None:
        with self._lock:
            self._set = True
            if self._response is not None:
                _shut(self._response)


def _socket_of(response: Any) -> Any:
    """The socket under a streamed requests answer, or None (http.client's internals)."""
    fp = getattr(getattr(getattr(response, "raw", None), "_fp", None), "fp", None)
    return getattr(getattr(fp, "raw", None), "_sock", None)


def _shut(response: Any) -> None:
    sock = _socket_of(response)
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.shutdown(2)  # SHUT_RDWR: wakes a read blocked in another thread


class _BodyProgress:
    """When an attempt's request body was last read, so an upload's answer can be timed."""

    def __init__(self, clock: Callable[[], float]) -> None:
        self._clock = clock
        self._finished: Optional[float] = None

    def begin(self) -> None:
        self._finished = None

    def finish(self) -> None:
        self._finished = self._clock()

    def answer_due(self, read_timeout: float) -> float:
        """The end of the attempt: none while the body moves (the socket times a stall),
        then the read timeout after its last byte."""
        return float("inf") if self._finished is None else self._finished + read_timeout


class _TrackedReader:
    """A request body that tells `_BodyProgress` when it is used up."""

    def __init__(self, handle: Any, progress: _BodyProgress) -> None:
        self._handle = handle
        self._progress = progress

    def __len__(self) -> int:
        return len(self._handle)

    def read(self, size: int = -1) -> bytes:
        chunk = self._handle.read(size)
        if not chunk:
            self._progress.finish()
        return chunk


_Self = TypeVar("_Self", bound="_Transport")


class _Transport:
    """Configuration, the session, and the one send path: retries, deadlines, error mapping.

    Every HTTP request goes through `_send`, which refuses redirects, gives the
    API key only to the API host, keeps the deadline and maps transport errors.
    The endpoint verbs live in `RebyteClient`, over `_request` and `_send_once_only`.
    """

    def __init__(
        self,
        api_key: Optional[str] = None,
        *,
        base_url: Optional[str] = None,
        connect_timeout: Optional[float] = None,
        read_timeout: Optional[float] = None,
        create_timeout: Optional[float] = None,
        max_retries: Optional[int] = None,
        total_timeout: Optional[float] = None,
        pool_size: int = 16,
        user_agent: Optional[str] = None,
        result_settle: Optional[float] = None,
    ) -> None:
        self._api_key = _check_api_key(
            api_key if api_key is not None else os.environ.get(API_KEY_ENV)
        )
        self.base_url = _check_base_url(
            base_url
            if base_url is not None
            else os.environ.get("REBYTE_BASE_URL") or DEFAULT_BASE_URL
        )
        self.connect_timeout = (
            _check_positive(connect_timeout, "connect timeout")
            if connect_timeout is not None
            else _env_float("REBYTE_CONNECT_TIMEOUT", DEFAULT_CONNECT_TIMEOUT)
        )
        self.read_timeout = (
            _check_positive(read_timeout, "read timeout")
            if read_timeout is not None
            else _env_float("REBYTE_READ_TIMEOUT", DEFAULT_READ_TIMEOUT)
        )
        self.create_timeout = (
            _check_positive(create_timeout, "create timeout")
            if create_timeout is not None
            else _env_float("REBYTE_CREATE_TIMEOUT", DEFAULT_CREATE_TIMEOUT)
        )
        if max_retries is None:
            max_retries = _env_int("REBYTE_MAX_RETRIES", DEFAULT_MAX_RETRIES)
        if isinstance(max_retries, bool) or not isinstance(max_retries, int) or max_retries < 0:
            raise ConfigurationError(f"max retries must be 0 or more, got {max_retries!r}")
        self.max_retries = max_retries
        # An upper bound on one call, retries and pauses included (None: attempts x timeouts).
        self.total_timeout = (
            _check_positive(total_timeout, "total timeout") if total_timeout is not None else None
        )
        # How long get_result reads a succeeded prompt again for an answer that lags its status.
        self.result_settle = (
            _check_positive(result_settle, "result settle time", allow_zero=True)
            if result_settle is not None
            else _env_float("REBYTE_RESULT_SETTLE", RESULT_SETTLE_SECONDS, allow_zero=True)
        )
        self.user_agent = user_agent or f"skill-as-a-service/{__version__}"
        # Seams for tests and simulations: how to wait, and what time it is.
        self._sleep: Callable[[float], None] = time.sleep
        self._clock: Callable[[], float] = time.monotonic

        self._requests = _import_requests()
        self._session = self._requests.Session()
        adapter = self._requests.adapters.HTTPAdapter(
            pool_connections=4, pool_maxsize=pool_size, max_retries=0
        )
        self._session.mount("https://", adapter)
        self._session.mount("http://", adapter)
        self._session.headers["User-Agent"] = self.user_agent
        # No ambient credentials or routes: requests would add ~/.netrc's login to any
        # host and send loopback traffic (the key with it) through an HTTP_PROXY. The
        # proxy settings are applied per request for remote hosts (_proxies_for), and
        # a CA bundle named in the environment is still honoured.
        self._session.trust_env = False
        self._session.verify = _ca_bundle_from_env() or True
        # No cookies: the API does not use them, and none may reach a storage host.
        import http.cookiejar  # noqa: PLC0415 - with requests, already loaded

        self._session.cookies.set_policy(http.cookiejar.DefaultCookiePolicy(allowed_domains=[]))

    def __repr__(self) -> str:
        key = _redact_key(self._api_key)
        return f"{type(self).__name__}(base_url={self.base_url!r}, api_key={key!r})"

    def __enter__(self: _Self) -> _Self:
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.close()

    def close(self) -> None:
        """Close pooled connections."""
        self._session.close()

    # -------------------------------------------------------------- paths and headers

    @staticmethod
    def _path(template: str, **ids: str) -> str:
        """`template` with each id checked and escaped as one path segment.

        `_path("/tasks/{task_id}/prompts", task_id=...)`: the message names the id
        after its keyword ("task id"), and `../files` or `a/b` cannot reach another route.
        """
        segments = {
            name: urllib.parse.quote(check_id(value, name.replace("_", " ")), safe="")
            for name, value in ids.items()
        }
        return template.format(**segments)

    def _proxies_for(self, url: str) -> Dict[str, str]:
        """The environment's proxies (HTTPS_PROXY, HTTP_PROXY, ALL_PROXY, NO_PROXY) for
        `url`; none for a loopback host, which never goes through a proxy."""
        try:
            host = urllib.parse.urlsplit(url).hostname or ""
        except ValueError:
            return {}
        if _is_loopback(host):
            return {}
        return dict(self._requests.utils.get_environ_proxies(url, no_proxy=None))

    def _is_api_url(self, url: str) -> bool:
        return url == self.base_url or url.startswith(self.base_url + "/")

    def _headers_for(self, url: str, with_key: bool, extra: Optional[Dict[str, str]]) -> dict:
        """The API key and JSON Accept for the API host; nothing of ours for any other host."""
        headers: Dict[str, str] = {}
        if with_key:
            if not self._is_api_url(url):
                raise RebyteError(
                    f"refusing to send the API key to {_without_query(url)}: not the API host"
                )
            headers = {"API_KEY": self._api_key, "Accept": "application/json"}
        headers.update(extra or {})
        return headers

    # -------------------------------------------------------------- the one send path

    def _send(
        self,
        method: str,
        url: str,
        *,
        with_key: bool = True,
        stream: bool = False,
        params: Optional[dict] = None,
        json_body: Optional[dict] = None,
        body: Optional[Callable[[], ContextManager[Any]]] = None,
        headers: Optional[Dict[str, str]] = None,
        idempotent: bool = True,
        read_timeout: Optional[float] = None,
        deadline: Optional[float] = None,
        watchdog: bool = True,
        max_bytes: int = MAX_ANSWER_BYTES,
    ) -> Tuple[Any, int]:
        """Send one request under the retry policy; return (final response, attempts made).

        Redirects are never followed (the caller sees the 3xx). `with_key` sends the
        API key and is allowed only for the API host; a storage URL goes without it.
        `body` opens a fresh request body per attempt (a retried upload restarts at
        byte 0); it may take as long as it takes while bytes move, but the answer
        must come within the read timeout after its last byte. Without `stream`, the
        answer is read here, at most `max_bytes` of it (MalformedResponseError
        beyond). With `stream`, the caller reads the body (through `_iter_body`,
        which maps its transport errors) and closes the response.
        """
        if not with_key:
            _check_storage_url(url)
        sent_headers = self._headers_for(url, with_key, headers)
        if json_body is not None:
            sent_headers.setdefault("Content-Type", "application/json")
        sent = _BodyProgress(self._clock)

        def attempt(timeout: Tuple[float, float], abandoned: _Abandon) -> Any:
            sent.begin()
            with body() if body is not None else _no_body() as data:
                if data is not None and hasattr(data, "read"):
                    data = _TrackedReader(data, sent)
                else:
                    sent.finish()
                response = self._session.request(
                    method,
                    url,
                    params=params,
                    json=json_body,
                    data=data,
                    headers=sent_headers,
                    timeout=timeout,
                    stream=True,
                    allow_redirects=False,
                    proxies=self._proxies_for(url),
                    # Not the API host: no ambient credentials either (~/.netrc would add some).
                    auth=None if with_key else _no_credentials,
                )
            abandoned.watch(response)
            if not stream:
                self._read_answer(method, url, response, max_bytes, abandoned)
            return response

        answer_due = read_timeout or self.read_timeout
        return self._with_retries(
            method,
            url,
            attempt,
            idempotent=idempotent,
            read_timeout=read_timeout,
            deadline=deadline,
            watchdog=watchdog,
            answer_limit=(lambda: sent.answer_due(answer_due)) if body is not None else None,
        )

    def _read_answer(
        self, method: str, url: str, response: Any, max_bytes: int, abandoned: _Abandon
    ) -> None:
        """Read a whole answer into `response.content`, refusing one over `max_bytes`
        (whatever its Content-Length says) and stopping once the caller has given up."""

        def too_large() -> MalformedResponseError:
            response.close()
            return MalformedResponseError(
                f"{method} {_without_query(url)}: the answer is larger than "
                f"{max_bytes / (1024 * 1024):g} MiB, more than any answer of the API",
                status=response.status_code,
                request_id=self._safe_request_id(response),
                method=method,
                url=_without_query(url),
            )

        length = (response.headers.get("Content-Length") or "").strip()
        if length.isdigit() and int(length) > max_bytes:
            raise too_large()
        content = bytearray()
        try:
            for chunk in response.iter_content(chunk_size=ANSWER_CHUNK_BYTES):
                if abandoned.is_set():
                    raise self._requests.exceptions.ReadTimeout("the caller gave up")
                content += chunk
                if len(content) > max_bytes:
                    raise too_large()
        except BaseException:
            response.close()
            raise
        # What requests itself does once a body is read: .content and .json() use it.
        response._content = bytes(content)
        response._content_consumed = True

    def _redirect_target(self, method: str, url: str, response: Any) -> str:
        """Where a 3xx answer points, for a caller that follows it itself, without the key.

        The Location is untrusted: it must be an absolute https URL (plain http
        only on loopback), or the answer is refused as any redirect is.
        """
        location = response.headers.get("Location") or ""
        target = urllib.parse.urljoin(url, location.strip())
        try:
            parts = urllib.parse.urlsplit(target)
            host = parts.hostname or ""
        except ValueError:
            host, parts = "", None
        secure = parts is not None and (
            parts.scheme == "https" or (parts.scheme == "http" and _is_loopback(host))
        )
        if not location.strip() or not host or not secure:
            self._raise_for_status(method, url, response)
        return target

    def _iter_body(self, method: str, url: str, response: Any, chunk_size: int) -> Iterator[bytes]:
        """The chunks of a streamed answer, a broken connection mapped like any other."""
        try:
            yield from response.iter_content(chunk_size=chunk_size)
        except self._requests.exceptions.RequestException as error:
            raise self._connection_error(method, url, error) from None

    def _iter_stream(
        self, method: str, url: str, response: Any, deadline: Optional[float]
    ) -> Iterator[bytes]:
        """The bytes of a long-lived answer as they arrive, whatever size each read is.

        Each read waits at most the read timeout, and never past `deadline`: a stream
        that trickles a byte now and then, or never ends a line, cannot hold a caller
        that checks its time per chunk. After the deadline, APITimeoutError.
        """
        read1 = getattr(response.raw, "read1", None)
        sock = _socket_of(response)
        if read1 is None or sock is None:  # an older urllib3: small reads, still bounded
            yield from self._iter_body(method, url, response, chunk_size=1)
            return
        errors = (self._requests.exceptions.RequestException, OSError, _urllib3_error())
        while True:
            wait = self.read_timeout
            if deadline is not None:
                wait = min(wait, deadline - self._clock())
                if wait <= 0:
                    raise APITimeoutError(
                        f"{method} {_without_query(url)}: the stream outlived its deadline"
                    )
            try:
                sock.settimeout(wait)
                chunk = read1(ANSWER_CHUNK_BYTES)
            except errors as error:
                raise self._connection_error(method, url, error) from None
            if not chunk:
                return
            yield chunk

    def _request(
        self,
        method: str,
        path: str,
        *,
        resource: Optional[str] = None,
        json_body: Optional[dict] = None,
        params: Optional[dict] = None,
        idempotent: bool = True,
        expect_json: bool = True,
        read_timeout: Optional[float] = None,
        deadline: Optional[float] = None,
        gone_is_done: bool = False,
    ) -> Any:
        """Send an API request with retries, and return its parsed JSON body.

        `resource` is the noun of the one resource `path` names (None for a
        collection), carried by the errors. With `gone_is_done`, a 404 after a
        retry means the first attempt did the work.
        """
        url = self.base_url + path
        response, attempts = self._send(
            method,
            url,
            params=params,
            json_body=json_body,
            idempotent=idempotent,
            read_timeout=read_timeout,
            deadline=deadline,
        )
        if gone_is_done and response.status_code == 404 and attempts > 1:
            return None
        self._raise_for_status(method, url, response, resource)
        return self._parse_body(method, url, response) if expect_json else None

    def _fetch(
        self,
        path: str,
        *,
        resource: Optional[str],
        fields: Tuple[str, ...],
        what: str,
        deadline: Optional[float] = None,
    ) -> dict:
        """GET a JSON object that must carry `fields`; the waits pass their deadline."""
        body = self._request("GET", path, resource=resource, deadline=deadline)
        return self._expect_fields(body, fields, what)

    def _send_once_only(
        self,
        method: str,
        path: str,
        body: dict,
        *,
        fields: Tuple[str, ...],
        what: str,
        operation: str,
        hint: str,
        resource: Optional[str] = None,
        resource_id: Optional[str] = None,
        read_timeout: Optional[float] = None,
    ) -> dict:
        """A POST that must not run twice: retried only when the server certainly did nothing.

        Any failure after the server may have acted is an OutcomeUnknownError
        carrying `operation`, `resource_id` and `hint`.
        """

        def unknown(message: str, cause: BaseException) -> OutcomeUnknownError:
            return OutcomeUnknownError(
                message, hint=hint, cause=cause, operation=operation, resource_id=resource_id
            )

        try:
            answer = self._request(
                method,
                path,
                resource=resource,
                json_body=body,
                idempotent=False,
                read_timeout=read_timeout,
            )
            return self._expect_fields(answer, fields, what)
        except APIConnectionError as error:
            if not error.maybe_sent:
                raise
            raise unknown(str(error), error) from error
        except ServerError as error:
            raise unknown(str(error), error) from error
        except MalformedResponseError as error:
            raise unknown(
                f"the server accepted the request but its answer was unreadable ({error.message})",
                error,
            ) from error

    # -------------------------------------------------------------- retries and deadlines

    def _with_retries(
        self,
        method: str,
        url: str,
        send: Callable[[Tuple[float, float]], Any],
        *,
        idempotent: bool,
        read_timeout: Optional[float] = None,
        deadline: Optional[float] = None,
        watchdog: bool = True,
        answer_limit: Optional[Callable[[], float]] = None,
    ) -> Tuple[Any, int]:
        """Run `send(timeout, abandoned)` under the retry policy; return (final response,
        attempts made).

        Idempotent calls retry on connection errors, timeouts and retryable
        statuses. Others retry only on 429 and on connections never made.
        No attempt or pause runs past `deadline` (or `total_timeout` from now);
        with `watchdog`, not even against a server that trickles its answer.
        `answer_limit()` is a moving end for an attempt (an upload's: its last
        byte plus the read timeout). An attempt given up on sees `abandoned` set.
        """
        if self.total_timeout is not None:
            own_deadline = self._clock() + self.total_timeout
            deadline = own_deadline if deadline is None else min(deadline, own_deadline)
        requests = self._requests
        attempt = 0
        while True:
            timeout = (self.connect_timeout, read_timeout or self.read_timeout)
            if deadline is not None:
                remaining = deadline - self._clock()
                if remaining <= 0:
                    raise APITimeoutError(
                        f"{method} {_without_query(url)}: no answer within the time allowed",
                        maybe_sent=attempt > 0,
                    )
                timeout = (min(timeout[0], remaining), min(timeout[1], remaining))
            started = time.monotonic()
            limit = _attempt_limit(deadline if watchdog else None, answer_limit)
            try:
                if limit is not None:
                    response = self._send_before(limit, send, timeout)
                else:
                    response = send(timeout, _Abandon())
            except requests.exceptions.RequestException as error:
                failure = self._connection_error(method, url, error)
                logger.debug(
                    "%s %s -> %s (attempt %d)",
                    method,
                    _without_query(url),
                    type(failure).__name__,
                    attempt + 1,
                )
                retryable = idempotent or not failure.maybe_sent
                delay = self._backoff(attempt)
                if (
                    not retryable
                    or attempt >= self.max_retries
                    or _past(deadline, delay, self._clock)
                ):
                    raise failure from None
            else:
                logger.debug(
                    "%s %s -> %d in %.3fs (attempt %d)",
                    method,
                    _without_query(url),
                    response.status_code,
                    time.monotonic() - started,
                    attempt + 1,
                )
                status = response.status_code
                retryable = status == 429 or (idempotent and status in RETRYABLE_STATUSES)
                retry_after = _retry_after_seconds(response.headers.get("Retry-After"))
                delay = retry_after if retry_after is not None else self._backoff(attempt)
                if (
                    not retryable
                    or attempt >= self.max_retries
                    or delay > MAX_RETRY_AFTER
                    or _past(deadline, delay, self._clock)
                ):
                    return response, attempt + 1
                response.close()
            attempt += 1
            self._sleep(delay)

    def _send_before(
        self,
        limit: Callable[[], float],
        send: Callable[[Tuple[float, float], _Abandon], Any],
        timeout: Tuple[float, float],
    ) -> Any:
        """`send(timeout, abandoned)`, abandoned when the clock passes `limit()`.

        Read timeouts bound each read, not the whole answer: a server that sends a
        byte now and then would hold the call forever. So the request runs in a
        helper thread, and the caller stops waiting for it at the limit; the helper
        then stops reading and closes what it opened.
        """
        outcome: queue.Queue = queue.Queue(maxsize=1)
        abandoned = _Abandon()

        def run() -> None:
            try:
                response = send(timeout, abandoned)
            except BaseException as error:  # handed to the caller, which raises it
                outcome.put((None, error))
                return
            outcome.put((response, None))

        threading.Thread(target=run, name="rebyte-request", daemon=True).start()
        while True:
            left = limit() - self._clock()
            try:
                if left <= 0:
                    response, error = outcome.get_nowait()
                else:
                    response, error = outcome.get(timeout=min(left, WATCHDOG_TICK))
                break
            except queue.Empty:
                if left > 0:
                    continue
            abandoned.set()
            with contextlib.suppress(queue.Empty):  # it came as we gave up: close it too
                late, _ = outcome.get_nowait()
                if late is not None:
                    late.close()
            raise self._requests.exceptions.ReadTimeout(
                "the answer did not arrive in the time allowed"
            )
        if error is not None:
            raise error
        return response

    @staticmethod
    def _backoff(attempt: int) -> float:
        delay = min(INITIAL_RETRY_DELAY * 2**attempt, MAX_RETRY_DELAY)
        return delay * (1 - 0.25 * random.random())

    # -------------------------------------------------------------- error mapping

    def _raise_for_status(
        self, method: str, url: str, response: Any, resource: Optional[str] = None
    ) -> None:
        """Raise the typed error for a failure; a redirect is refused, so the key never follows."""
        if 300 <= response.status_code < 400:
            target = self._scrub(_without_query(response.headers.get("Location") or "elsewhere"))
            raise APIError(
                f"{method} {_without_query(url)} was redirected to {target}; "
                "not followed, so the key stays with the configured host",
                status=response.status_code,
                request_id=self._safe_request_id(response),
                method=method,
                url=_without_query(url),
                resource=resource,
            )
        if response.status_code >= 400:
            raise self._error_from_response(method, url, response, resource)

    def _connection_error(self, method: str, url: str, error: BaseException) -> APIConnectionError:
        shown = _without_query(url)
        timeouts = (self._requests.exceptions.Timeout,)
        maybe_sent = not _never_connected(error)
        if isinstance(error, timeouts) or _caused_by_read_timeout(error):
            return APITimeoutError(
                f"{method} {shown}: no answer within the timeout", maybe_sent=maybe_sent
            )
        reason = _short_reason(error)
        if reason == "TLS error":
            return APIConnectionError(
                f"{method} {shown}: the TLS handshake failed ({_tls_detail(error)}); check that "
                "the URL's scheme matches the server (https:// to a plain-HTTP port fails so), "
                "and behind a TLS-inspecting proxy set REQUESTS_CA_BUNDLE or SSL_CERT_FILE to "
                "its CA certificate file",
                maybe_sent=maybe_sent,
            )
        return APIConnectionError(
            f"{method} {shown}: connection failed ({reason})", maybe_sent=maybe_sent
        )

    def _parse_body(self, method: str, url: str, response: Any) -> Any:
        try:
            return _loads(response.content)
        except ValueError:
            snippet = _describe_body(response)
            raise MalformedResponseError(
                f"{method} {_without_query(url)}: expected JSON, got {self._scrub(snippet)}",
                status=response.status_code,
                request_id=self._safe_request_id(response),
                method=method,
                url=_without_query(url),
            ) from None

    def _error_from_response(
        self, method: str, url: str, response: Any, resource: Optional[str] = None
    ) -> APIError:
        status = response.status_code
        code = message = None
        try:
            payload = _loads(response.content)
        except ValueError:
            payload = None
        if isinstance(payload, dict):
            error = payload.get("error")
            if isinstance(error, dict):
                code = error.get("code") if isinstance(error.get("code"), str) else None
                message = error.get("message") if isinstance(error.get("message"), str) else None
            elif isinstance(error, str):
                message = error
            elif isinstance(payload.get("message"), str):
                message = payload["message"]
        if not message:
            message = f"{_reason_phrase(status)} (body: {_describe_body(response)})"
        message = self._scrub(message)[:500]  # scrub first: a cut key would slip through
        kwargs: Dict[str, Any] = {
            "status": status,
            "code": self._scrub(code)[:200] if code else None,
            "request_id": self._safe_request_id(response),
            "method": method,
            "url": _without_query(url),
            "resource": resource,
        }
        if status in (401, 403):
            return AuthenticationError(message, **kwargs)
        if status == 404:
            return NotFoundError(message, **kwargs)
        if status in (400, 422):
            return ValidationError(message, **kwargs)
        if status == 429:
            retry_after = _retry_after_seconds(response.headers.get("Retry-After"))
            return RateLimitError(message, retry_after=retry_after, **kwargs)
        if status >= 500:
            return ServerError(message, **kwargs)
        return APIError(message, **kwargs)

    @staticmethod
    def _expect_fields(body: Any, fields: Tuple[str, ...], what: str) -> dict:
        """`body` if it is an object with `fields`; ids and names must be non-empty strings,
        and `data`/`prompts` lists (see _FIELD_KINDS), or the answer is malformed."""
        if not (isinstance(body, dict) and all(field in body for field in fields)):
            raise MalformedResponseError(
                f"{what}: the answer lacks {', '.join(fields)} (got {type(body).__name__})",
                status=None,
            )
        for field in fields:
            kind = _FIELD_KINDS.get(field)
            value = body[field]
            if kind is str and not (isinstance(value, str) and value.strip()):
                raise MalformedResponseError(
                    f"{what}: the answer's {field} is not a non-empty string "
                    f"(got {_kind_of(value)})",
                    status=None,
                )
            if kind is list and not isinstance(value, list):
                raise MalformedResponseError(
                    f"{what}: the answer's {field} is not a list (got {_kind_of(value)})",
                    status=None,
                )
        return body

    def _safe_request_id(self, response: Any) -> Optional[str]:
        request_id = _request_id(response)
        return self._scrub(request_id) if request_id is not None else None

    def _scrub(self, text: str) -> str:
        """`text` without the key, nor its secret part (what follows the `rbk_` prefix)."""
        text = text.replace(self._api_key, _redact_key(self._api_key))
        secret = self._api_key.split("_", 1)[1] if "_" in self._api_key else ""
        if len(secret) >= 8:
            text = text.replace(secret, "…redacted")
        return text

    # -------------------------------------------------------------- shared loops

    def _poll_until(
        self,
        fetch: Callable[[float], dict],
        is_done: Callable[[dict], bool],
        *,
        timeout: float,
        poll_interval: float,
        max_poll_interval: float,
        backoff: float,
        on_timeout: Callable[[Optional[dict], Optional[BaseException]], BaseException],
        state_of: Callable[[dict], Any] = lambda obj: obj,
        on_status: Optional[Callable[[dict], None]] = None,
        on_pending: Optional[Callable[[float], None]] = None,
        label: str = "",
    ) -> dict:
        """Call `fetch(poll_deadline)` until `is_done(obj)`; return that object.

        Transient failures are ridden out until the deadline, then `on_timeout(last
        object, last error)` is raised. `on_status` hears each change of
        `state_of(obj)`. `on_pending(deadline)` runs once, after the first poll that
        is not done (to wait some other way), and the next poll follows at once.
        """
        timeout = _check_positive(timeout, "wait timeout", InputError)
        interval = _check_positive(poll_interval, "poll interval", InputError)
        max_interval = max(
            interval, _check_positive(max_poll_interval, "max poll interval", InputError)
        )
        if isinstance(backoff, bool) or not isinstance(backoff, (int, float)) or backoff < 1:
            raise InputError(f"backoff must be a number of at least 1, got {backoff!r}")
        deadline = self._clock() + timeout
        last: Optional[dict] = None
        last_error: Optional[BaseException] = None
        last_state: Any = _UNSEEN
        pending_tried = on_pending is None
        while True:
            try:
                # The last poll lands on the deadline: a short grace lets it be made, but
                # an earlier poll to a server that never answers ends at the deadline.
                obj = fetch(max(deadline, self._clock() + FINAL_POLL_GRACE))
                last, last_error = obj, None
            except (
                APIConnectionError,
                ServerError,
                RateLimitError,
                MalformedResponseError,
            ) as error:
                last_error = error
                logger.debug("wait %s: transient failure, still waiting: %s", label, error)
            else:
                state = state_of(obj)
                if state != last_state:
                    last_state = state
                    if on_status is not None:
                        on_status(obj)
                if is_done(obj):
                    return obj
                if not pending_tried and on_pending is not None:
                    pending_tried = True
                    on_pending(deadline)
                    continue
            remaining = deadline - self._clock()
            if remaining <= 0:
                raise on_timeout(last, last_error)
            self._sleep(min(interval, remaining))
            interval = min(interval * backoff, max_interval)

    @staticmethod
    def _iter_pages(list_page: Callable[[int, int], dict], page_size: int) -> Iterator[dict]:
        """Every item of `list_page(limit, offset)` pages, each id once.

        It stops on a short page, at `total`, or on a full page of nothing new
        (a server ignoring offset would otherwise loop forever). Pages that go on
        past the first total plus LIST_SLACK, or past MAX_LIST_ITEMS, are an error.
        """
        _check_int(page_size, "page size", 1, MAX_PAGE_SIZE)
        seen = set()
        offset = 0
        bound = MAX_LIST_ITEMS
        while True:
            if offset > bound:
                raise MalformedResponseError(
                    f"the listing never ends: more than {bound:,} items came "
                    f"in pages that keep saying there are more",
                    status=None,
                )
            page = list_page(page_size, offset)
            fresh = 0
            for item in page["data"]:
                item_id = item.get("id") if isinstance(item, dict) else None
                if item_id in seen:
                    continue
                seen.add(item_id)
                fresh += 1
                yield item
            offset += len(page["data"])
            total = page.get("total")
            if bound == MAX_LIST_ITEMS and isinstance(total, int) and not isinstance(total, bool):
                bound = min(MAX_LIST_ITEMS, max(total, 0) + LIST_SLACK)
            if len(page["data"]) < page_size or (isinstance(total, int) and offset >= total):
                return
            if not fresh:
                return


# ------------------------------------------------------------------- the endpoints


class _DoneListener:
    """What a wait does between polls with `use_events`: listen on the event stream until
    it says the prompt ended. A failure costs nothing (the wait polls either way); a
    server with no stream for the task (404) is not asked again by this wait."""

    def __init__(self, client: RebyteClient, task_id: str, prompt_id: Optional[str]) -> None:
        self._client, self._task_id, self._prompt_id = client, task_id, prompt_id
        self._usable = True

    def listen(self, deadline: float) -> None:
        remaining = deadline - self._client._clock()
        if remaining <= 0 or not self._usable:
            return
        events = self._client.iter_events(
            self._task_id, prompt_id=self._prompt_id, timeout=remaining, polling_fallback=False
        )
        try:
            for event in events:
                if event.get("eventType") == "done":
                    return
        except NotFoundError:
            self._usable = False
            logger.debug("wait %s: the task has no event stream; polling", self._task_id)
        except RebyteError as error:  # WaitTimeoutError included: the final poll decides
            logger.debug(
                "wait %s: no help from the event stream (%s); polling", self._task_id, error
            )


class RebyteClient(_Transport):
    """A client for the Rebyte v1 API.

    Configuration comes from the arguments, then the environment
    (`REBYTE_API_KEY`, `REBYTE_BASE_URL`, `REBYTE_CONNECT_TIMEOUT`,
    `REBYTE_READ_TIMEOUT`, `REBYTE_CREATE_TIMEOUT`, `REBYTE_MAX_RETRIES`).

    One client may be shared across threads: it keeps one `requests.Session`
    whose connection pool (`pool_size` connections per host) is safe for
    concurrent requests, and it holds no other mutable state.
    """

    def describe_request(self, method: str, path: str, body: Optional[dict] = None) -> dict:
        """What a call would send, with the key redacted: for dry runs and logs."""
        headers = {"API_KEY": _redact_key(self._api_key), "User-Agent": self.user_agent}
        if body is not None:
            headers["Content-Type"] = "application/json"
        return {"method": method, "url": self.base_url + path, "headers": headers, "json": body}

    # -------------------------------------------------------------- tasks

    def create_task(
        self,
        prompt: str,
        *,
        executor: Optional[str] = None,
        model: Optional[str] = None,
        skills: Optional[Iterable[str]] = None,
        files: Optional[Iterable[dict]] = None,
        github_url: Optional[str] = None,
        branch_name: Optional[str] = None,
        workspace_id: Optional[str] = None,
    ) -> dict:
        """Create a task; blocks while its VM is provisioned, then returns `{"id", "url", ...}`.

        Retried only where the server certainly did nothing (429, no connection):
        any other failure after sending raises OutcomeUnknownError.
        """
        body = self.task_body(
            prompt,
            executor=executor,
            model=model,
            skills=skills,
            files=files,
            github_url=github_url,
            branch_name=branch_name,
            workspace_id=workspace_id,
        )
        return self._send_once_only(
            "POST",
            "/tasks",
            body,
            fields=("id",),
            what="create task",
            operation="create_task",
            hint=(
                "the task may have been created: check with list_tasks(limit=5) "
                "before creating it again"
            ),
            read_timeout=self.create_timeout,
        )

    @staticmethod
    def task_body(
        prompt: str,
        *,
        executor: Optional[str] = None,
        model: Optional[str] = None,
        skills: Optional[Iterable[str]] = None,
        files: Optional[Iterable[dict]] = None,
        github_url: Optional[str] = None,
        branch_name: Optional[str] = None,
        workspace_id: Optional[str] = None,
    ) -> dict:
        """The validated JSON body of POST /v1/tasks: only the fields the caller gave."""
        body: Dict[str, Any] = {"prompt": check_prompt(prompt)}
        if executor is not None:
            body["executor"] = _check_optional_string(executor, "executor")
        if model is not None:
            body["model"] = _check_optional_string(model, "model")
        if skills is not None:
            body["skills"] = _check_string_list(skills, "skills")
        if files is not None:
            body["files"] = _check_file_refs(files)
        if github_url is not None:
            body["githubUrl"] = normalize_github_repo(github_url)
        if branch_name is not None:
            body["branchName"] = _check_optional_string(branch_name, "branch name")
        if workspace_id is not None:
            body["workspaceId"] = _check_optional_string(workspace_id, "workspace id")
        return body

    def get_task(self, task_id: str) -> dict:
        """The task with its derived `status` and its `prompts`."""
        return self._get_task(task_id)

    def _get_task(self, task_id: str, deadline: Optional[float] = None) -> dict:
        path = self._path("/tasks/{task_id}", task_id=task_id)
        task = self._fetch(
            path, resource="task", fields=("id",), what="get task", deadline=deadline
        )
        return _check_task_shape(task)

    def list_tasks(self, limit: int = 50, offset: int = 0) -> dict:
        """One page, newest first: `{"data", "total", "limit", "offset"}`."""
        params = {
            "limit": _check_int(limit, "limit", 1, MAX_PAGE_SIZE),
            "offset": _check_int(offset, "offset", 0),
        }
        page = self._request("GET", "/tasks", params=params)
        page = self._expect_fields(page, ("data",), "list tasks")
        if not isinstance(page["data"], list):
            raise MalformedResponseError("list tasks: `data` is not a list", status=200)
        return page

    def iter_tasks(self, page_size: int = MAX_PAGE_SIZE) -> Iterator[dict]:
        """Every task, newest first, page by page; a task already yielded is not repeated."""
        return self._iter_pages(
            lambda limit, offset: self.list_tasks(limit=limit, offset=offset), page_size
        )

    def follow_up(
        self,
        task_id: str,
        prompt: str,
        skills: Optional[Iterable[str]] = None,
        files: Optional[Iterable[dict]] = None,
    ) -> dict:
        """Send another prompt to a task (its VM is resumed if stopped); returns `{"promptId"}`."""
        path = self._path("/tasks/{task_id}/prompts", task_id=task_id)
        body: Dict[str, Any] = {"prompt": check_prompt(prompt)}
        if skills is not None:
            body["skills"] = _check_string_list(skills, "skills")
        if files is not None:
            body["files"] = _check_file_refs(files)
        # Like a create, a follow-up may first resume a stopped VM: it gets the long timeout.
        return self._send_once_only(
            "POST",
            path,
            body,
            fields=("promptId",),
            what="follow up",
            operation="follow_up",
            hint=(
                f"the follow-up may have been sent: check with get_task({task_id!r}) "
                "before sending it again"
            ),
            resource="task",
            resource_id=task_id,
            read_timeout=self.create_timeout,
        )

    def set_visibility(self, task_id: str, visibility: str = "public") -> dict:
        """Set who can see a task; `shareUrl` comes back when it is public."""
        if visibility not in VISIBILITIES:
            raise InputError(
                f"visibility must be one of {', '.join(VISIBILITIES)}, got {visibility!r}"
            )
        path = self._path("/tasks/{task_id}/visibility", task_id=task_id)
        answer = self._request("PATCH", path, resource="task", json_body={"visibility": visibility})
        return self._expect_fields(answer, ("visibility",), "set visibility")

    def delete_task(self, task_id: str) -> None:
        """Soft-delete a task. A retry that finds it already gone counts as success."""
        path = self._path("/tasks/{task_id}", task_id=task_id)
        self._request("DELETE", path, resource="task", expect_json=False, gone_is_done=True)

    def cancel_task(self, task_id: str) -> dict:
        """Stop the running prompt; the task still takes follow-ups afterwards."""
        path = self._path("/tasks/{task_id}/cancel", task_id=task_id)
        try:
            answer = self._request("POST", path, resource="task", idempotent=True)
        except MalformedResponseError:  # a 2xx without JSON (204, say): canceled all the same
            return {}
        return answer if isinstance(answer, dict) else {}

    def get_task_content(self, task_id: str, *, include_events: bool = False) -> dict:
        """The prompts with `userPrompt` and the agent's `response`."""
        params = {"include": "events"} if include_events else None
        path = self._path("/tasks/{task_id}/content", task_id=task_id)
        content = self._request("GET", path, resource="task", params=params)
        return self._expect_fields(content, ("prompts",), "get task content")

    def get_result(
        self,
        task_id: str,
        prompt_id: Optional[str] = None,
        *,
        settle: Optional[float] = None,
    ) -> Optional[str]:
        """The agent's answer to a prompt (the latest by default); None when the API has none.

        The service can turn a task terminal a moment before its `finalResult` is
        filled in, and can leave it `""`: a succeeded prompt without an answer is
        read again for up to `settle` seconds, then its /content `response` is asked
        (matched by prompt id, else by position). `""` comes back only when /content
        says the agent answered with nothing; None means no answer came back through
        the API at all (it may still be on the task's page). `settle` defaults to the
        client's `result_settle` (3 s, or REBYTE_RESULT_SETTLE).
        """
        check_task_id(task_id)
        settle = self.result_settle if settle is None else settle
        deadline = self._clock() + max(0.0, settle)
        task = self._get_task(task_id)
        delay = RESULT_SETTLE_FIRST_DELAY
        while True:
            answer, latest = _answer_in_view(task, prompt_id)
            if answer or not latest or _prompt_status(task, prompt_id) != "succeeded":
                break
            remaining = deadline - self._clock()
            if remaining <= 0:
                break
            self._sleep(min(delay, remaining))
            delay = min(delay * 2, 1.0)
            task = self._get_task(task_id)
        if answer:
            return answer
        return self._content_answer(task_id, task, prompt_id)

    def _content_answer(self, task_id: str, task: dict, prompt_id: Optional[str]) -> Optional[str]:
        try:
            content = self.get_task_content(task_id)
        except (NotFoundError, MalformedResponseError):
            return None
        entries = [p for p in content.get("prompts") or [] if isinstance(p, dict)]
        entry = _matching_entry(entries, _prompt_ids(task), prompt_id)
        response = (entry or {}).get("response")
        return response if isinstance(response, str) else None

    # -------------------------------------------------------------- task waits

    def wait_for_task(
        self,
        task_id: str,
        *,
        prompt_id: Optional[str] = None,
        timeout: float = DEFAULT_WAIT_TIMEOUT,
        poll_interval: float = 2.0,
        max_poll_interval: float = 10.0,
        backoff: float = 1.5,
        on_status: Optional[Callable[[dict], None]] = None,
        use_events: bool = False,
    ) -> dict:
        """Poll until the task (or, with `prompt_id`, that prompt) is terminal; return the task.

        Right after a follow-up the task may still read `completed` from the
        previous prompt, so waiting on a follow-up means passing its `prompt_id`.
        Transient failures are ridden out until the deadline; on timeout a
        WaitTimeoutError carries the last task seen.

        With `use_events`, the wait listens on the task's event stream after the
        first poll: one long request instead of a poll every few seconds, and the
        end is seen at once. Where the stream fails, polling takes over.
        """
        check_task_id(task_id)

        def timed_out(last: Optional[dict], last_error: Optional[BaseException]) -> BaseException:
            what = f"prompt {prompt_id} of task {task_id}" if prompt_id else f"task {task_id}"
            status = (last or {}).get("status", "unknown")
            return WaitTimeoutError(
                f"timed out after {timeout:g}s waiting for {what} (last status: {status})",
                task_id=task_id,
                prompt_id=prompt_id,
                last_task=last,
                last_error=last_error,
            )

        stream = _DoneListener(self, task_id, prompt_id) if use_events else None
        return self._poll_until(
            lambda deadline: self._get_task(task_id, deadline),
            lambda task: _is_done(task, prompt_id),
            timeout=timeout,
            poll_interval=poll_interval,
            max_poll_interval=max_poll_interval,
            backoff=backoff,
            on_timeout=timed_out,
            state_of=_progress_state,
            on_status=on_status,
            on_pending=((lambda deadline: stream.listen(deadline)) if stream is not None else None),
            label=task_id,
        )

    # -------------------------------------------------------------- task events

    def iter_events(
        self,
        task_id: str,
        *,
        prompt_id: Optional[str] = None,
        timeout: Optional[float] = None,
        reconnect_delay: float = 1.0,
        max_reconnects: int = 50,
        polling_fallback: bool = True,
    ) -> Iterator[dict]:
        """Yield the agent's events for the latest prompt (or `prompt_id`) as they come.

        Each event is the server's data object (`seq`, `eventType`, `payload`, ...).
        The last item has `eventType: "done"` with `status`, `lastSeq` and `finalResult`.
        Each connection replays from the start, so events are de-duplicated on
        `eventKey` (else prompt and seq); a dropped stream is resumed; an early
        empty `done` (lastSeq -1) means "not started yet", not the end. Every read
        has the client's read timeout, and reconnects without progress are bounded.
        With `timeout`, a WaitTimeoutError ends the stream once that many seconds pass.

        Where the server has no event stream for a task it still shows (404), the
        task is polled instead (unless `polling_fallback` is False): one item
        `{"eventType": "polling"}` says so, then one `{"eventType": "status"}` per
        change, then the `done` item as above.
        """
        path = self._path("/tasks/{task_id}/events", task_id=task_id)
        deadline = None
        if timeout is not None:
            deadline = self._clock() + _check_positive(timeout, "watch timeout", InputError)

        def check_deadline() -> None:
            if deadline is not None and self._clock() >= deadline:
                raise WaitTimeoutError(
                    f"timed out after {timeout:g}s watching task {task_id}",
                    task_id=task_id,
                    prompt_id=prompt_id,
                )

        seen = set()
        failures = 0
        reconnects = 0
        last_contact = self._clock()
        while True:
            progressed = False
            try:
                for kind, data in self._stream_sse(path, deadline):
                    check_deadline()
                    if kind == "open":
                        last_contact = self._clock()
                    elif kind == "event":
                        if prompt_id is not None and data.get("promptId") not in (None, prompt_id):
                            continue
                        key = _event_identity(data)
                        if key in seen:
                            continue
                        seen.add(key)
                        progressed = True
                        failures = 0
                        yield data
                    elif kind == "done":
                        final = self._final_done(task_id, prompt_id, data, bool(seen))
                        if final is not None:
                            yield final
                            return
                        break
            except NotFoundError:
                if seen or not polling_fallback:
                    raise
                self._get_task(task_id, deadline)  # a task that is gone stays a NotFoundError
                yield from self._polled_events(task_id, prompt_id, deadline, check_deadline)
                return
            except (
                APIConnectionError,
                ServerError,
                RateLimitError,
                MalformedResponseError,
            ) as error:
                check_deadline()
                failures += 1
                out_of_time = (
                    self.total_timeout is not None
                    and self._clock() - last_contact >= self.total_timeout
                )
                if failures > self.max_retries or out_of_time:
                    raise
                logger.debug("events %s: stream failed, reconnecting: %s", task_id, error)
            reconnects = 0 if progressed else reconnects + 1
            if reconnects > max_reconnects:
                raise APIConnectionError(
                    f"the event stream of task {task_id} ended {max_reconnects} times without news"
                )
            check_deadline()
            self._sleep(reconnect_delay if not progressed else 0)

    def _polled_events(
        self,
        task_id: str,
        prompt_id: Optional[str],
        deadline: Optional[float],
        check_deadline: Callable[[], None],
    ) -> Iterator[dict]:
        """The events of a task without an event stream: its status changes, then done."""
        yield {"eventType": "polling", "reason": "the task has no event stream: polling it"}
        delay, last_state = POLLED_EVENTS_FIRST_DELAY, None
        while True:
            check_deadline()
            task = self._get_task(task_id, deadline)
            state = _progress_state(task)
            if _is_done(task, prompt_id):
                yield _done_from_task(task, prompt_id, {"lastSeq": -1})
                return
            if state != last_state:
                last_state = state
                yield {
                    "eventType": "status",
                    "status": task.get("status"),
                    "promptId": prompt_id,
                    "prompts": [p.get("status") for p in task.get("prompts") or []],
                }
            if deadline is not None:
                delay = min(delay, max(deadline - self._clock(), 0.0))
            self._sleep(delay)
            delay = min(delay * 1.5, POLLED_EVENTS_MAX_DELAY)

    def _final_done(
        self, task_id: str, prompt_id: Optional[str], done: dict, saw_events: bool
    ) -> Optional[dict]:
        """The `done` item that ends the stream, or None to reconnect.

        A `done` after our events is trusted. Otherwise (the early race, a prompt
        that ended with no events, or the stream of another prompt) the task says
        whether the prompt has ended. A read that still lags behind a `done` whose
        status is terminal (in either vocabulary) and that counted events is
        overruled once the stream is known to be our prompt's: the done is the news,
        the read only catches up. An empty done (`lastSeq: -1`) ends the stream only
        once the task says so: until then it may be the early race.
        """
        if saw_events and done.get("lastSeq") != -1:
            return {"eventType": "done", **done}
        task = self.get_task(task_id)
        prompts = [p for p in task.get("prompts") or [] if isinstance(p, dict)]
        latest = prompts[-1] if prompts else {}
        ours = prompt_id is None or latest.get("id") == prompt_id
        if not _is_done(task, prompt_id):
            counted = isinstance(done.get("lastSeq"), int) and done["lastSeq"] >= 0
            if ours and prompts and counted and _ended_word(done.get("status")):
                return {"eventType": "done", **done, "promptId": latest.get("id")}
            return None
        return _done_from_task(task, prompt_id, done)

    def _stream_sse(
        self, path: str, deadline: Optional[float] = None
    ) -> Iterator[Tuple[str, dict]]:
        """Yield ("open", {}) once connected, then (event name, data) per server-sent event,
        and ("tick", {}) per comment line, so a caller can keep time on a quiet stream."""
        url = self.base_url + path
        response, _ = self._send(
            "GET",
            url,
            headers={"Accept": "text/event-stream"},
            stream=True,
            deadline=deadline,
        )
        with response:
            self._raise_for_status("GET", url, response, "task")
            yield "open", {}
            event_name, data_lines, size = "message", [], 0
            for line in _sse_lines(self._iter_stream("GET", url, response, deadline)):
                if line is None or line.startswith(":"):
                    yield "tick", {}
                elif not line:
                    if data_lines:
                        yield event_name, _parse_event_data("\n".join(data_lines))
                    event_name, data_lines, size = "message", [], 0
                else:
                    field, _, value = line.partition(":")
                    value = value[1:] if value.startswith(" ") else value
                    if field == "event":
                        event_name = value
                    elif field == "data":
                        size += len(value) + 1
                        if size > MAX_EVENT_BYTES:
                            raise _event_too_large()
                        data_lines.append(value)

    # -------------------------------------------------------------- files (task inputs)

    def upload_file(
        self,
        path: str | os.PathLike[str],
        *,
        content_type: Optional[str] = None,
        progress: Optional[Callable[[int, int], None]] = None,
    ) -> dict:
        """Upload a file for a task; returns `{"id", "filename"}` for `create_task(files=...)`.

        The bytes are streamed from disk with their Content-Length (constant memory),
        straight to the storage host, which never sees the API key. `progress` is
        called with (bytes sent, total bytes).
        """
        path, name, size = check_upload_path(path)
        content_type = content_type or mimetypes.guess_type(name)[0] or "application/octet-stream"
        slot = self._request(
            "POST", "/files", json_body={"filename": name, "contentType": content_type}
        )
        slot = self._expect_fields(slot, ("id", "filename", "uploadUrl"), "create upload slot")
        self._put_file(slot["uploadUrl"], path, size, content_type, progress)
        return {"id": slot["id"], "filename": slot["filename"]}

    def _put_file(
        self,
        url: str,
        path: str,
        size: int,
        content_type: str,
        progress: Optional[Callable[[int, int], None]],
    ) -> None:
        """PUT the file to a signed storage URL, without the API key."""
        shown_url = _without_query(url)

        @contextlib.contextmanager
        def file_body() -> Iterator[Any]:
            # A fresh handle per attempt: a retried PUT starts the file from its first byte.
            try:
                handle = open(path, "rb")  # noqa: SIM115 - closed below
            except OSError as error:
                raise InputError(
                    f"cannot read {path} any more ({error.strerror or error}): "
                    "it was moved or deleted after it was checked"
                ) from None
            with handle:
                yield _ProgressReader(handle, size, progress) if size else b""

        # No deadline: a large file may take longer than an API call is allowed to; the
        # send path still ends a transfer that stalls, or an answer that does not come.
        response, _ = self._send(
            "PUT",
            url,
            with_key=False,
            body=file_body,
            headers={"Content-Type": content_type, "Content-Length": str(size)},
            watchdog=False,
        )
        if not 200 <= response.status_code < 300:  # a redirect stored nothing either
            error = self._error_from_response("PUT", shown_url, response)
            reason = (
                "the upload URL expired or its signature was refused"
                if response.status_code == 403
                else error.message
            )
            raise UploadError(
                f"the storage host refused the upload: {reason}",
                status=response.status_code,
                code=error.code,
                request_id=error.request_id,
                method="PUT",
                url=shown_url,
            )

    # -------------------------------------------------------------- artifacts

    def resolve_workspace_id(
        self, task_or_workspace_id: str, *, known: Optional[str] = None
    ) -> str:
        """The workspace a task ran in, or the id itself when no task has it (a workspace id).

        The documents show a task's `workspaceId` only in its create answer, so a
        caller that kept it passes it as `known`; the task view is asked only when a
        server happens to carry it there, and otherwise WorkspaceUnknownError says so.
        """
        task_id = check_id(task_or_workspace_id, "task or workspace id")
        if known is not None:
            return check_id(known, "workspace id")
        try:
            task = self._get_task(task_id)
        except NotFoundError:
            return task_id
        workspace_id = task.get("workspaceId")
        if not isinstance(workspace_id, str) or not workspace_id.strip():
            raise WorkspaceUnknownError(task_id)
        return check_id(workspace_id, "workspace id")

    def _artifacts_path(self, workspace_id: str, name: Optional[str] = None) -> str:
        path = self._path("/workspaces/{workspace_id}/artifacts", workspace_id=workspace_id)
        return path if name is None else f"{path}/{_artifact_segment(name)}"

    def list_artifacts(
        self, workspace_or_task_id: str, *, workspace_id: Optional[str] = None
    ) -> List[dict]:
        """The files a workspace holds (a task id stands for its workspace; pass the
        task's `workspace_id` when it is known: see resolve_workspace_id).

        Each entry keeps the server's fields and has `name` (str) and `size`
        (int, or None when the server gave none or an unusable one).
        """
        workspace_id = self.resolve_workspace_id(workspace_or_task_id, known=workspace_id)
        return self._list_artifacts(workspace_id)

    def _list_artifacts(self, workspace_id: str) -> List[dict]:
        answer = self._request("GET", self._artifacts_path(workspace_id), resource="workspace")
        items = _artifact_items(answer)
        if items is None:
            raise MalformedResponseError(
                "list artifacts: the answer is neither a list nor {data: [...]} "
                f"(got {type(answer).__name__})",
                status=200,
            )
        entries = []
        for item in items:
            name = _artifact_entry_name(item)
            if name is None:
                logger.warning("list artifacts: an entry without a file name was left out")
                continue
            entries.append({**item, "name": name, "size": _artifact_size(item.get("size"))})
        return entries

    def download_artifact(
        self,
        workspace_id: str,
        name: str,
        dest_dir: str | os.PathLike[str] = ".",
        *,
        overwrite: bool = False,
        progress: Optional[Callable[[str, int, Optional[int]], None]] = None,
    ) -> dict:
        """Download one artifact into `dest_dir`; returns `{"name", "path", "bytes"}`.

        The name is untrusted (see safe_artifact_path); nested names keep their
        folders. An existing file is refused unless `overwrite`, before anything
        is sent. The bytes stream in constant memory into a temporary file beside
        the target, renamed into place only once complete: an interrupted
        download never leaves a file under the final name. A redirect to a
        storage host is followed without the API key. `progress(name, bytes so
        far, total or None)` is called as bytes arrive.
        """
        workspace_id = check_id(workspace_id, "workspace id")
        path = safe_artifact_path(dest_dir, name)
        _refuse_existing(path, overwrite)
        return self._download(workspace_id, name, dest_dir, path, overwrite, progress)

    def download_artifacts(
        self,
        workspace_or_task_id: str,
        names: Optional[Iterable[str]] = None,
        dest_dir: str | os.PathLike[str] = ".",
        *,
        overwrite: bool = False,
        progress: Optional[Callable[[str, int, Optional[int]], None]] = None,
        workspace_id: Optional[str] = None,
    ) -> List[dict]:
        """Download several artifacts (every one when `names` is None) into `dest_dir`;
        `workspace_id` as list_artifacts takes it.

        Every name is checked before the first byte is fetched: an unsafe name, two
        names that would land on the same local file, or an existing file (without
        `overwrite`) raises ArtifactsRefusedError naming each, and nothing is
        downloaded. To fetch the others anyway, call again with
        `names` minus `error.refused`.
        """
        workspace_id = self.resolve_workspace_id(workspace_or_task_id, known=workspace_id)
        if names is None:
            names = [entry["name"] for entry in self._list_artifacts(workspace_id)]
        else:
            names = _check_string_list(names, "artifact names")
        planned, refused = _plan_artifact_paths(dest_dir, names)
        existing = [name for name, path in planned if not overwrite and os.path.lexists(path)]
        refused += [(name, f"{path} exists already") for name, path in planned if name in existing]
        if refused:
            raise ArtifactsRefusedError(refused, existing)
        return [
            self._download(workspace_id, name, dest_dir, path, overwrite, progress)
            for name, path in planned
        ]

    def _download(
        self,
        workspace_id: str,
        name: str,
        dest_dir: Any,
        path: str,
        overwrite: bool,
        progress: Optional[Callable[[str, int, Optional[int]], None]],
    ) -> dict:
        url = self.base_url + self._artifacts_path(workspace_id, name)
        folder = os.path.dirname(path) or "."
        temp = os.path.join(folder, f".rebyte-{os.urandom(8).hex()}.part")
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
        with _local_write(path):
            os.makedirs(folder, exist_ok=True)
            safe_artifact_path(dest_dir, name)  # again: the folders now exist, none may lead out
            # O_EXCL: never write through a file or link already there; 0o666: the umask rules.
            fd = os.open(temp, flags, 0o666)
        try:
            with os.fdopen(fd, "wb") as handle:
                attempt = 0
                while True:
                    handle.seek(0)
                    handle.truncate()  # a retry starts again from byte 0
                    try:
                        written = self._fetch_artifact(url, name, handle, progress)
                        break
                    except APIConnectionError as error:
                        if attempt >= self.max_retries:
                            raise
                        logger.debug("download %s: %s; starting again", name, error)
                        self._sleep(self._backoff(attempt))
                        attempt += 1
            if not overwrite and os.path.lexists(path):
                raise InputError(f"{path} appeared during the download; not overwritten")
            with _local_write(path):
                os.replace(temp, path)
        except BaseException:  # Ctrl-C too: nothing half-written stays behind
            with contextlib.suppress(OSError):
                os.unlink(temp)
            raise
        return {"name": name, "path": path, "bytes": written}

    def _fetch_artifact(
        self,
        url: str,
        name: str,
        handle: Any,
        progress: Optional[Callable[[str, int, Optional[int]], None]],
    ) -> int:
        """GET the artifact into `handle` (following a storage redirect without the key)."""
        headers = {"Accept": "*/*", "Accept-Encoding": "identity"}
        response, _ = self._send("GET", url, stream=True, headers=headers, watchdog=False)
        current, hops = url, 0
        while response.status_code in _REDIRECT_STATUSES and hops < MAX_DOWNLOAD_REDIRECTS:
            target = self._redirect_target("GET", current, response)
            response.close()
            current, hops = target, hops + 1
            response, _ = self._send(
                "GET", target, with_key=False, stream=True, headers=headers, watchdog=False
            )
        with response:
            if hops == 0:
                self._raise_for_status("GET", url, response, "artifact")
            elif not 200 <= response.status_code < 300:
                if 300 <= response.status_code < 400:
                    self._raise_for_status("GET", current, response, "artifact")
                error = self._error_from_response("GET", current, response, "artifact")
                raise type(error)(
                    f"the storage host refused the download: {error.message}",
                    status=error.status,
                    code=error.code,
                    request_id=error.request_id,
                    method="GET",
                    url=_without_query(current),
                    resource="artifact",
                )
            expected = _content_length(response)
            written = 0
            for chunk in self._iter_body("GET", current, response, UPLOAD_CHUNK_BYTES):
                with _local_write(name):
                    handle.write(chunk)
                written += len(chunk)
                if expected is not None and written > expected:
                    break
                if progress is not None:
                    progress(name, written, expected)
            if expected is not None and written != expected:
                raise APIConnectionError(
                    f"GET {_without_query(current)}: the download of {name!r} was cut off "
                    f"({written} of {expected} bytes)"
                    if written < expected
                    else f"GET {_without_query(current)}: more bytes than the "
                    f"{expected} announced for {name!r}"
                )
        return written

    def upload_artifacts(
        self,
        workspace_id: str,
        paths: Iterable[str | os.PathLike[str]],
        *,
        progress: Optional[Callable[[str, int, Optional[int]], None]] = None,
    ) -> List[dict]:
        """Upload local files into a workspace (named by their base names); returns entries.

        Small files go in multipart POSTs of at most SMALL_ARTIFACT_BYTES; larger
        ones through a signed upload URL (streamed PUT with Content-Length, no key).
        A POST is sent once only: a failure after the server may have stored the
        files raises OutcomeUnknownError (operation "upload_artifacts").
        """
        workspace_id = check_id(workspace_id, "workspace id")
        if isinstance(paths, (str, os.PathLike)):
            raise InputError("paths must be a list of file paths")
        files = [check_upload_path(path) for path in paths]
        if not files:
            raise InputError("no files to upload")
        seen: Dict[str, str] = {}
        for path, name, _ in files:
            if name in seen:
                raise InputError(f"{seen[name]} and {path} would both be artifact {name!r}")
            seen[name] = path
        results: List[dict] = []
        batch: List[Tuple[str, str, int]] = []
        budget = 0
        for path, name, size in files:
            cost = size + MULTIPART_PART_OVERHEAD
            if cost > SMALL_ARTIFACT_BYTES:
                results += self._upload_large_artifact(workspace_id, path, name, size, progress)
                continue
            if budget + cost > SMALL_ARTIFACT_BYTES:
                results += self._post_artifacts(workspace_id, batch, progress)
                batch, budget = [], 0
            batch.append((path, name, size))
            budget += cost
        if batch:
            results += self._post_artifacts(workspace_id, batch, progress)
        return results

    def _post_artifacts(
        self,
        workspace_id: str,
        batch: List[Tuple[str, str, int]],
        progress: Optional[Callable[[str, int, Optional[int]], None]],
    ) -> List[dict]:
        """One multipart/form-data POST of small files (held in memory: at most 8 MiB)."""
        from urllib3.filepost import encode_multipart_formdata  # noqa: PLC0415 - with requests

        fields = []
        for path, name, _ in batch:
            with open(path, "rb") as handle:
                data = handle.read()
            content_type = mimetypes.guess_type(name)[0] or "application/octet-stream"
            fields.append(("file", (name, data, content_type)))
        data, content_type = encode_multipart_formdata(fields)
        url = self.base_url + self._artifacts_path(workspace_id)
        hint = (
            f"the files may have been uploaded: check with list_artifacts({workspace_id!r}) "
            "before uploading them again"
        )
        try:
            response, _ = self._send(
                "POST",
                url,
                body=lambda: _as_context(data),
                headers={"Content-Type": content_type},
                idempotent=False,
                read_timeout=self.create_timeout,
            )
            self._raise_for_status("POST", url, response, "workspace")
            try:
                items = _artifact_items(self._parse_body("POST", url, response)) or []
            except MalformedResponseError:  # a 2xx: the files are there whatever it says
                logger.warning("upload artifacts: the answer was not JSON; the upload succeeded")
                items = []
        except (APIConnectionError, ServerError, MalformedResponseError) as error:
            if isinstance(error, APIConnectionError) and not error.maybe_sent:
                raise
            raise OutcomeUnknownError(
                str(error),
                hint=hint,
                cause=error,
                operation="upload_artifacts",
                resource_id=workspace_id,
            ) from error
        if progress is not None:
            for _, name, size in batch:
                progress(name, size, size)
        by_name = {_artifact_entry_name(item): item for item in items if isinstance(item, dict)}
        return [
            {
                **(by_name.get(name) or {}),
                "name": name,
                "size": _artifact_size((by_name.get(name) or {}).get("size", size)),
            }
            for _, name, size in batch
        ]

    def _upload_large_artifact(
        self,
        workspace_id: str,
        path: str,
        name: str,
        size: int,
        progress: Optional[Callable[[str, int, Optional[int]], None]],
    ) -> List[dict]:
        content_type = mimetypes.guess_type(name)[0] or "application/octet-stream"
        slot = self._request(
            "POST",
            self._artifacts_path(workspace_id) + "/upload-url",
            resource="workspace",
            json_body={"filename": name, "contentType": content_type},
        )
        upload_url = _first_string(slot, UPLOAD_URL_FIELDS)
        if upload_url is None:
            raise MalformedResponseError(
                "artifact upload URL: the answer names no URL "
                f"(looked for {', '.join(UPLOAD_URL_FIELDS)})",
                status=None,
            )
        per_file = (lambda sent, total: progress(name, sent, total)) if progress else None
        self._put_file(upload_url, path, size, content_type, per_file)
        return [{"name": name, "filename": name, "size": size, "contentType": content_type}]

    def delete_artifact(self, workspace_id: str, name: str) -> None:
        """Delete one artifact. A retry that finds it already gone counts as success."""
        workspace_id = check_id(workspace_id, "workspace id")
        path = self._artifacts_path(workspace_id, name)
        self._request("DELETE", path, resource="artifact", expect_json=False, gone_is_done=True)

    def delete_all_artifacts(self, workspace_id: str) -> None:
        """Delete every artifact of a workspace."""
        workspace_id = check_id(workspace_id, "workspace id")
        path = self._artifacts_path(workspace_id)
        self._request("DELETE", path, resource="workspace", expect_json=False)

    # -------------------------------------------------------------- computers

    def create_computer(self, name: Optional[str] = None, icon: Optional[str] = None) -> dict:
        """Create an Agent Computer: a VM that provisions in the background.

        Returns at once with `status: "provisioning"`; `wait_for_computer` waits
        for `ready`. Its `id` is a workspace id: `create_task(..., workspace_id=id)`
        runs tasks in it without provisioning. Retried only where the server
        certainly did nothing (429, no connection): any other failure after
        sending raises OutcomeUnknownError.
        """
        body: Dict[str, Any] = {}
        if name is not None:
            body["name"] = _check_text(name, "computer name", MAX_COMPUTER_NAME_CHARS)
        if icon is not None:
            body["icon"] = _check_text(icon, "computer icon", MAX_COMPUTER_ICON_CHARS)
        return self._send_once_only(
            "POST",
            "/agent-computers",
            body,
            fields=("id",),
            what="create computer",
            operation="create_computer",
            hint=(
                "the computer may have been created: check with list_computers(limit=5) "
                "before creating it again"
            ),
        )

    def get_computer(self, computer_id: str) -> dict:
        """The computer with its `status` (provisioning, ready or error)."""
        return self._get_computer(computer_id)

    def _get_computer(self, computer_id: str, deadline: Optional[float] = None) -> dict:
        path = self._path("/agent-computers/{computer_id}", computer_id=computer_id)
        return self._fetch(
            path, resource="computer", fields=("id",), what="get computer", deadline=deadline
        )

    def list_computers(self, limit: int = 50, offset: int = 0) -> dict:
        """One page, newest first: `{"data", "total", "limit", "offset"}`."""
        return self._list_page("/agent-computers", limit, offset, "list computers")

    def iter_computers(self, page_size: int = MAX_PAGE_SIZE) -> Iterator[dict]:
        """Every computer, newest first, page by page; one already yielded is not repeated."""
        return self._iter_pages(
            lambda limit, offset: self.list_computers(limit=limit, offset=offset), page_size
        )

    def wait_for_computer(
        self,
        computer_id: str,
        *,
        timeout: float = DEFAULT_COMPUTER_WAIT_TIMEOUT,
        poll_interval: float = 2.0,
        max_poll_interval: float = 10.0,
        on_status: Optional[Callable[[dict], None]] = None,
    ) -> dict:
        """Poll with backoff until the computer is `ready`; return it.

        `error` raises ProvisionError with the server's `provisionError`; running
        out of time raises WaitTimeoutError (resource "computer"), the computer
        still provisioning. `on_status` hears each change of status.
        """
        check_id(computer_id, "computer id")

        def timed_out(last: Optional[dict], last_error: Optional[BaseException]) -> BaseException:
            status = (last or {}).get("status", "unknown")
            return WaitTimeoutError(
                f"timed out after {timeout:g}s waiting for computer {computer_id} "
                f"(last status: {status})",
                last_error=last_error,
                resource="computer",
                resource_id=computer_id,
            )

        computer = self._poll_until(
            lambda deadline: self._get_computer(computer_id, deadline),
            lambda obj: obj.get("status") in ("ready", "error"),
            timeout=timeout,
            poll_interval=poll_interval,
            max_poll_interval=max_poll_interval,
            backoff=1.5,
            on_timeout=timed_out,
            state_of=lambda obj: obj.get("status"),
            on_status=on_status,
            label=computer_id,
        )
        if computer.get("status") == "error":
            reason = computer.get("provisionError")
            reason = reason if isinstance(reason, str) and reason.strip() else None
            raise ProvisionError(
                f"computer {computer_id} failed to provision: "
                f"{(reason or 'no reason given').rstrip('. ')}",
                computer=computer,
                provision_error=reason,
            )
        return computer

    def delete_computer(self, computer_id: str) -> None:
        """Delete a computer and its VM. A retry that finds it already gone counts as success."""
        path = self._path("/agent-computers/{computer_id}", computer_id=computer_id)
        self._request("DELETE", path, resource="computer", expect_json=False, gone_is_done=True)

    def _list_page(self, path: str, limit: int, offset: int, what: str) -> dict:
        params = {
            "limit": _check_int(limit, "limit", 1, MAX_PAGE_SIZE),
            "offset": _check_int(offset, "offset", 0),
        }
        page = self._expect_fields(self._request("GET", path, params=params), ("data",), what)
        if not isinstance(page["data"], list):
            raise MalformedResponseError(f"{what}: `data` is not a list", status=200)
        return page

    # -------------------------------------------------------------- webhooks

    def add_webhook(
        self,
        url: str,
        events: Iterable[str],
        *,
        description: Optional[str] = None,
        secret: Optional[str] = None,
        allow_duplicate: bool = False,
    ) -> dict:
        """Register an https URL for task events (see WEBHOOK_EVENTS); returns the webhook.

        Everything is checked here before sending. `secret` is sent once and never
        shown again: no error, log line or repr carries it (the API never returns
        it either; `hasSecret` says one is set). An organization has at most 3.
        Retried only where the server certainly did nothing, like a create.
        The service may register one URL twice, so the webhooks are listed first
        and one with this URL is returned as it is, marked `alreadyRegistered`,
        unless `allow_duplicate`.
        """
        body: Dict[str, Any] = {
            "url": _check_webhook_url(url),
            "events": _check_webhook_events(events),
        }
        if description is not None:
            body["description"] = _check_text(description, "description", MAX_WEBHOOK_TEXT_CHARS)
        if secret is not None:
            body["secret"] = _check_text(secret, "webhook secret", MAX_WEBHOOK_TEXT_CHARS)
        if not allow_duplicate:
            for hook in self.list_webhooks():
                if isinstance(hook, dict) and hook.get("url") == body["url"]:
                    return {**hook, "alreadyRegistered": True}
        try:
            return self._send_once_only(
                "POST",
                "/webhooks",
                body,
                fields=("id",),
                what="add webhook",
                operation="add_webhook",
                hint=(
                    "the webhook may have been added: check with list_webhooks() "
                    "before adding it again"
                ),
            )
        except RebyteError as error:
            if secret:
                _scrub_error(error, secret)
            raise

    def list_webhooks(self) -> List[dict]:
        """The organization's webhooks (the answer's `data` or `webhooks`, or a bare list)."""
        answer = self._request("GET", "/webhooks")
        hooks = answer
        if isinstance(answer, dict):
            hooks = next((answer[k] for k in ("data", "webhooks") if k in answer), None)
        if not isinstance(hooks, list) or not all(isinstance(h, dict) for h in hooks):
            raise MalformedResponseError(
                "list webhooks: the answer holds no list of webhooks", status=200
            )
        return hooks

    def get_webhook(self, webhook_id: str) -> dict:
        path = self._path("/webhooks/{webhook_id}", webhook_id=webhook_id)
        return self._fetch(path, resource="webhook", fields=("id",), what="get webhook")

    def delete_webhook(self, webhook_id: str) -> None:
        """Remove a webhook. A retry that finds it already gone counts as success."""
        path = self._path("/webhooks/{webhook_id}", webhook_id=webhook_id)
        self._request("DELETE", path, resource="webhook", expect_json=False, gone_is_done=True)

    def get_webhook_public_key(self) -> dict:
        """`{"publicKey": PEM, ...}`: the key that verifies Rebyte's webhook signatures (the
        answer's shape is undocumented: the key may come as publicKey, key or public_key)."""
        answer = self._request("GET", "/webhooks/public_key")
        key = _first_string(answer, PUBLIC_KEY_FIELDS)
        if key is None:
            raise MalformedResponseError(
                "get webhook public key: the answer holds no key "
                f"(looked for {', '.join(PUBLIC_KEY_FIELDS)})",
                status=None,
            )
        fields = answer.get("data") if isinstance(answer.get("data"), dict) else answer
        return {**fields, "publicKey": key}


# ------------------------------------------------------------------------- helpers


_UNSEEN = object()  # the state before the first poll: unequal to any state


@contextlib.contextmanager
def _no_body() -> Iterator[None]:
    yield None


def _attempt_limit(
    deadline: Optional[float], answer_limit: Optional[Callable[[], float]]
) -> Optional[Callable[[], float]]:
    """The moving end of one attempt, from a fixed deadline and an upload's answer limit."""
    if answer_limit is None:
        return None if deadline is None else (lambda: deadline)
    if deadline is None:
        return answer_limit
    return lambda: min(deadline, answer_limit())


def _no_credentials(request: Any) -> Any:
    """An auth hook that adds nothing: it keeps requests from adding ~/.netrc credentials."""
    return request


def _past(deadline: Optional[float], delay: float, clock: Callable[[], float]) -> bool:
    """Would a pause of `delay` seconds end after the deadline?"""
    return deadline is not None and clock() + delay >= deadline


def _progress_state(task: dict) -> tuple:
    prompts = task.get("prompts") if isinstance(task.get("prompts"), list) else []
    return (
        task.get("status"),
        tuple((p.get("id"), p.get("status")) for p in prompts if isinstance(p, dict)),
    )


def _done_from_task(task: dict, prompt_id: Optional[str], done: dict) -> dict:
    """The `done` item of a prompt that the task view shows ended."""
    prompts = [p for p in task.get("prompts") or [] if isinstance(p, dict)]
    latest = prompts[-1] if prompts else {}
    if prompt_id is None or latest.get("id") == prompt_id:
        status, result = task.get("status"), task.get("finalResult")
        if not result and isinstance(done.get("finalResult"), str):
            result = done["finalResult"]
    else:
        mine = next(p for p in prompts if p.get("id") == prompt_id)
        status, result = task_status_of(mine.get("status")), None
    return {
        **done,
        "eventType": "done",
        "status": status,
        "finalResult": result,
        "promptId": prompt_id or latest.get("id"),
    }


def _ended_word(status: Any) -> bool:
    """A terminal status in the task vocabulary or the prompt one (`done` may use either)."""
    return status in TASK_TERMINAL_STATUSES or status in PROMPT_TERMINAL_STATUSES


def task_status_of(status: Any) -> Any:
    """A status in the task vocabulary: a prompt's `succeeded` is a task's `completed`."""
    return "completed" if status == "succeeded" else status


def _is_done(task: dict, prompt_id: Optional[str]) -> bool:
    if prompt_id is None:
        return task.get("status") in TASK_TERMINAL_STATUSES
    for prompt in task.get("prompts") or []:
        if isinstance(prompt, dict) and prompt.get("id") == prompt_id:
            return prompt.get("status") in PROMPT_TERMINAL_STATUSES
    return False


def _prompt_ids(task: dict) -> List[Optional[str]]:
    prompts = task.get("prompts") if isinstance(task.get("prompts"), list) else []
    return [p.get("id") if isinstance(p, dict) else None for p in prompts]


def _prompt_status(task: dict, prompt_id: Optional[str]) -> Optional[str]:
    """The status of that prompt (the latest when None), in the prompt vocabulary."""
    prompts = [p for p in task.get("prompts") or [] if isinstance(p, dict)]
    if prompt_id is not None:
        prompts = [p for p in prompts if p.get("id") == prompt_id]
    if prompts:
        return prompts[-1].get("status")
    return {"completed": "succeeded"}.get(task.get("status"), task.get("status"))


def _answer_in_view(task: dict, prompt_id: Optional[str]) -> Tuple[Optional[str], bool]:
    """(the task view's non-empty finalResult, whether it answers that prompt): the view's
    answer is the latest prompt's, so it says nothing of an earlier one."""
    ids = _prompt_ids(task)
    latest = prompt_id is None or (bool(ids) and ids[-1] == prompt_id)
    final = task.get("finalResult")
    return (final if latest and isinstance(final, str) and final else None), latest


def _matching_entry(
    entries: List[dict], prompt_ids: List[Optional[str]], prompt_id: Optional[str]
) -> Optional[dict]:
    """The /content entry of that prompt (the latest when None): by id where the entries
    carry ids, else by the prompt's position among the task's prompts."""
    if not entries:
        return None
    if prompt_id is None:
        return entries[-1]
    by_id = [entry for entry in entries if entry.get("id") == prompt_id]
    if by_id:
        return by_id[-1]
    if any(entry.get("id") for entry in entries) or prompt_id not in prompt_ids:
        return None
    position = prompt_ids.index(prompt_id)
    return entries[position] if position < len(entries) else None


def _sse_lines(chunks: Iterable[bytes]) -> Iterator[Optional[str]]:
    """Split a byte stream into lines as SSE does (LF or CRLF), yielding each as soon as it
    ends, and None after each chunk, so that the caller can keep time on a stream that
    never ends a line. Linear in the bytes; a line over MAX_EVENT_BYTES is malformed."""
    buffer = bytearray()
    for chunk in chunks:
        scanned = len(buffer)  # the bytes before are known to hold no newline
        buffer += chunk
        start = 0
        while True:
            end = buffer.find(b"\n", max(start, scanned))
            if end < 0:
                break
            line = bytes(buffer[start:end]).rstrip(b"\r")
            start = end + 1
            yield line.decode("utf-8", errors="replace")
        del buffer[:start]
        if len(buffer) > MAX_EVENT_BYTES:
            raise _event_too_large()
        yield None
    if buffer:
        yield bytes(buffer).rstrip(b"\r").decode("utf-8", errors="replace")


def _event_too_large() -> MalformedResponseError:
    return MalformedResponseError(
        f"the event stream sent an event larger than {MAX_EVENT_BYTES / (1024 * 1024):g} MiB",
        status=None,
    )


def _urllib3_error() -> type:
    """urllib3's base error (what a raw read raises); requests always brings urllib3."""
    import urllib3  # noqa: PLC0415 - only after requests was imported

    return urllib3.exceptions.HTTPError


def _event_identity(event: dict) -> Any:
    """What makes an event the same one when a reconnect replays it: its eventKey, else
    its prompt and seq, else (neither given) its whole content, so distinct ones stay."""
    if event.get("eventKey"):
        return event["eventKey"]
    if event.get("seq") is not None:
        return (event.get("promptId"), event["seq"])
    text = json.dumps(event, sort_keys=True, default=str)
    return hashlib.sha256(text.encode("utf-8", errors="replace")).digest()


def _parse_event_data(text: str) -> dict:
    try:
        data = _loads(text)
    except ValueError:
        return {"eventType": "unparsed", "payload": text}
    if not isinstance(data, dict):
        return {"eventType": "unparsed", "payload": data}
    for field, kinds in _EVENT_FIELD_KINDS.items():
        value = data.get(field)
        if value is not None and (isinstance(value, bool) or not isinstance(value, kinds)):
            raise MalformedResponseError(
                f"the event stream sent an event whose {field} is {_kind_of(value)}", status=None
            )
    return data


# What the contract promises of the fields the client relies on.
_FIELD_KINDS: Dict[str, type] = {
    "id": str,
    "promptId": str,
    "filename": str,
    "uploadUrl": str,
    "visibility": str,
    "data": list,
    "prompts": list,
}
_EVENT_FIELD_KINDS: Dict[str, Any] = {
    "seq": int,
    "lastSeq": int,
    "eventKey": str,
    "promptId": str,
    "eventType": str,
    "status": str,
}


def _kind_of(value: Any) -> str:
    return "null" if value is None else type(value).__name__


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _loads(data: Any) -> Any:
    """JSON as the contract allows it: no NaN or Infinity, and no nesting that would
    exhaust the stack (a ValueError for both, like any other malformed body)."""
    if isinstance(data, (bytes, bytearray)):
        data = bytes(data).decode("utf-8", errors="replace")
    try:
        return json.loads(data, parse_constant=_refuse_constant)
    except RecursionError:
        raise ValueError("JSON nested too deeply") from None


def _check_task_shape(task: dict, what: str = "get task") -> dict:
    """The task if its `status` is a string and its `prompts` a list of objects; the
    waits and results rely on both, so anything else is a malformed answer."""
    status = task.get("status")
    if status is not None and not isinstance(status, str):
        raise MalformedResponseError(
            f"{what}: the task's status is {_kind_of(status)}, not a string", status=None
        )
    prompts = task.get("prompts")
    if prompts is not None and not (
        isinstance(prompts, list) and all(isinstance(p, dict) for p in prompts)
    ):
        raise MalformedResponseError(
            f"{what}: the task's prompts are not a list of objects", status=None
        )
    return task


def _exception_chain(error: BaseException) -> Iterator[BaseException]:
    seen = set()
    stack = [error]
    while stack:
        current = stack.pop()
        if not isinstance(current, BaseException) or id(current) in seen:
            continue  # ssl.SSLError.reason, for one, is a string
        seen.add(id(current))
        yield current
        stack.extend([current.__cause__, current.__context__, getattr(current, "reason", None)])
        stack.extend(arg for arg in getattr(current, "args", ()) if isinstance(arg, BaseException))


def _scrub_error(error: BaseException, secret: str) -> None:
    """Blank `secret` wherever an error (and the errors behind it) could show it."""
    for current in _exception_chain(error):
        current.args = tuple(
            arg.replace(secret, "…redacted") if isinstance(arg, str) else arg
            for arg in current.args
        )
        for name in ("message", "hint"):
            value = getattr(current, name, None)
            if isinstance(value, str):
                setattr(current, name, value.replace(secret, "…redacted"))


def _never_connected(error: BaseException) -> bool:
    """True only when the TCP connection was never made, so the server cannot have acted."""
    names = {type(e).__name__ for e in _exception_chain(error)}
    return bool(
        names
        & {"ConnectTimeout", "NewConnectionError", "NameResolutionError", "ConnectTimeoutError"}
    )


def _caused_by_read_timeout(error: BaseException) -> bool:
    return any(
        type(e).__name__ in ("ReadTimeoutError", "ReadTimeout", "timeout", "TimeoutError")
        for e in _exception_chain(error)
    )


def _short_reason(error: BaseException) -> str:
    names = [type(e).__name__ for e in _exception_chain(error)]
    for known, text in (
        ("NameResolutionError", "host name not found"),
        ("ConnectionRefusedError", "connection refused"),
        ("NewConnectionError", "could not connect"),
        ("ConnectionResetError", "connection reset by the server"),
        ("RemoteDisconnected", "the server closed the connection without answering"),
        ("IncompleteRead", "the answer was cut off"),
        ("ChunkedEncodingError", "the answer was cut off"),
        ("SSLError", "TLS error"),
        ("ProtocolError", "the connection broke"),
    ):
        if known in names:
            return text
    return names[0] if names else "unknown error"


def _tls_detail(error: BaseException) -> str:
    """The innermost SSL error's own words, e.g. "CERTIFICATE_VERIFY_FAILED"."""
    import ssl

    for item in _exception_chain(error):
        if isinstance(item, ssl.SSLError):
            reason = getattr(item, "reason", None)
            if isinstance(reason, str) and reason:
                return reason.replace("_", " ").lower()
    return "TLS error"


def _reason_phrase(status: int) -> str:
    from http import HTTPStatus

    try:
        return f"HTTP {status} {HTTPStatus(status).phrase}"
    except ValueError:
        return f"HTTP {status}"


def _request_id(response: Any) -> Optional[str]:
    for name in REQUEST_ID_HEADERS:
        value = response.headers.get(name)
        if value:
            return value
    return None


def _describe_body(response: Any) -> str:
    """A short, safe description of a body that is not the JSON we wanted."""
    content = response.content or b""
    if not content.strip():
        return "an empty body"
    kind = (response.headers.get("Content-Type") or "").split(";")[0].strip() or "unknown type"
    if "html" in kind or content.lstrip()[:1] == b"<":
        return f"an HTML page ({len(content)} bytes)"
    text = content[:80].decode("utf-8", errors="replace").replace("\n", " ")
    return f"{kind} {text!r}{'…' if len(content) > 80 else ''}"


# Where undocumented answers may put a value, in the order looked at.
UPLOAD_URL_FIELDS = ("uploadUrl", "url", "signedUrl", "upload_url")
PUBLIC_KEY_FIELDS = ("publicKey", "key", "public_key", "pem")


def _first_string(answer: Any, fields: Tuple[str, ...]) -> Optional[str]:
    """The first non-empty string among `fields` of an answer, or of its `data` object."""
    for holder in (answer, answer.get("data") if isinstance(answer, dict) else None):
        if isinstance(holder, dict):
            for field in fields:
                value = holder.get(field)
                if isinstance(value, str) and value.strip():
                    return value
    return None


def _artifact_items(answer: Any) -> Optional[list]:
    """The entries of an artifact answer: a bare list, a `data` or `artifacts` list, or
    one entry alone (the wrapper is undocumented); None when it is none of those."""
    if isinstance(answer, list):
        return answer
    if not isinstance(answer, dict):
        return None
    for key in ("data", "artifacts", "files"):
        if isinstance(answer.get(key), list):
            return answer[key]
    if _artifact_entry_name(answer) is not None:
        return [answer]
    return None


def _artifact_entry_name(item: Any) -> Optional[str]:
    if not isinstance(item, dict):
        return None
    for field_name in ("filename", "name"):
        value = item.get(field_name)
        if isinstance(value, str) and value:
            return value
    return None


def _artifact_size(value: Any) -> Optional[int]:
    """A size from the server, if it is a usable whole number of bytes."""
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value)
    if isinstance(value, float) and 0 <= value < 2**63 and value % 1 == 0:
        value = int(value)
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    return None


def _content_length(response: Any) -> Optional[int]:
    """The announced body length, when there is one to trust for checking."""
    if (response.headers.get("Content-Encoding") or "identity").lower() != "identity":
        return None  # the decoded bytes differ from the length; urllib3 checks the raw ones
    value = (response.headers.get("Content-Length") or "").strip()
    return int(value) if value.isdigit() else None


@contextlib.contextmanager
def _as_context(data: bytes) -> Iterator[bytes]:
    yield data


@contextlib.contextmanager
def _local_write(path: str) -> Iterator[None]:
    """A local file-system failure (a full disk, a file where a folder must go) as InputError."""
    try:
        yield
    except InputError:
        raise
    except OSError as error:
        reason = error.strerror or type(error).__name__
        raise InputError(f"cannot write {path}: {reason}") from error
