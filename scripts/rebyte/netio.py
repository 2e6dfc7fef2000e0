"""Small pieces of the send path: request bodies that report progress, the abandon
signal of an attempt given up on, and the sockets under a streamed answer.
"""

from __future__ import annotations

import contextlib
import threading
from typing import (
    Any,
    Callable,
    Iterator,
    Optional,
)

from .constants import UPLOAD_CHUNK_BYTES
from .errors import InputError


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
