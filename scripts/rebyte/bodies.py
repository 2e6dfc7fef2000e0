"""What the API's answers must hold: strict JSON, the fields relied on, and the
undocumented shapes some answers take.
"""

from __future__ import annotations

import json
import urllib.parse
from typing import (
    Any,
    Dict,
    Optional,
    Tuple,
)

from .config import _is_loopback, _without_secrets
from .constants import REQUEST_ID_HEADERS
from .errors import MalformedResponseError

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


def _reason_phrase(status: int) -> str:
    from http import HTTPStatus

    try:
        return f"HTTP {status} {HTTPStatus(status).phrase}"
    except ValueError:
        return f"HTTP {status}"


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
