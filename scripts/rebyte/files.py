"""The files resource: `client.files.upload(path)` for a task's `files=`."""

from __future__ import annotations

import logging
import mimetypes
import os
from typing import (
    Callable,
    Optional,
)

from .checks import check_upload_path
from .resource import _Resource

logger = logging.getLogger("rebyte")


class Files(_Resource):
    """`client.files`: upload a file for a task's `files=`."""

    def upload(
        self,
        path: str | os.PathLike[str],
        *,
        content_type: Optional[str] = None,
        progress: Optional[Callable[[int, int], None]] = None,
    ) -> dict:
        """Upload a file for a task; returns `{"id", "filename"}` for `tasks.create(files=...)`.

        The bytes are streamed from disk with their Content-Length (constant memory),
        straight to the storage host, which never sees the API key. `progress` is
        called with (bytes sent, total bytes).
        """
        path, name, size = check_upload_path(path)
        content_type = content_type or mimetypes.guess_type(name)[0] or "application/octet-stream"
        slot = self._client._request(
            "POST", "/files", json_body={"filename": name, "contentType": content_type}
        )
        slot = self._client._expect_fields(
            slot, ("id", "filename", "uploadUrl"), "create upload slot"
        )
        self._client._put_file(slot["uploadUrl"], path, size, content_type, progress)
        return {"id": slot["id"], "filename": slot["filename"]}
