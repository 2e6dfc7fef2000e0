"""File transfers: uploads streamed from disk, downloads streamed into place."""

from __future__ import annotations

import contextlib
import logging
import os
from typing import (
    Any,
    Callable,
    Iterator,
    Optional,
)

from .bodies import _content_length
from .checks import safe_artifact_path
from .config import _without_query
from .constants import _REDIRECT_STATUSES, MAX_DOWNLOAD_REDIRECTS, UPLOAD_CHUNK_BYTES
from .errors import APIConnectionError, InputError, UploadError
from .netio import _local_write, _ProgressReader

logger = logging.getLogger("rebyte")


class _Transfers:
    """Bytes to and from storage: a file PUT to a signed URL, a download streamed to a file."""

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

    def _download(
        self,
        url: str,
        name: str,
        dest_dir: Any,
        path: str,
        overwrite: bool,
        progress: Optional[Callable[[str, int, Optional[int]], None]],
    ) -> dict:
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
