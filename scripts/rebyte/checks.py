"""Checks of the caller's input, made before anything is sent: prompts, ids, repositories,
file paths, artifact names, webhook URLs and events.
"""

from __future__ import annotations

import os
import re
import urllib.parse
from typing import (
    Any,
    Dict,
    List,
    Optional,
    Tuple,
)

from .config import _CONTROL_OR_SPACE, _without_secrets
from .constants import (
    MAX_FILENAME_CHARS,
    MAX_ID_CHARS,
    MAX_NAME_BYTES,
    MAX_PROMPT_CHARS,
    MAX_WEBHOOK_URL_CHARS,
    PROMPT_TERMINAL_STATUSES,
    TASK_TERMINAL_STATUSES,
    WEBHOOK_EVENTS,
)
from .errors import InputError

_GITHUB_OWNER = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,38})"


_GITHUB_REPO = r"[A-Za-z0-9._-]{1,100}"


_GITHUB_SHORT = re.compile(rf"({_GITHUB_OWNER})/({_GITHUB_REPO})")


_GITHUB_URL = re.compile(
    rf"(?:https?://)?(?:www\.)?github\.com/({_GITHUB_OWNER})/({_GITHUB_REPO}?)(?:\.git)?/?"
)


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
        raise InputError('files must be a list of {"id", "filename"} from files.upload()')
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
                f'each file must be {{"id", "filename"}} as returned by files.upload(), got {ref!r}'
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
