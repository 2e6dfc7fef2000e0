"""The artifacts resource: a workspace's files. Every method takes a workspace id; a caller
holding a task id asks `client.tasks.workspace_of(task_id, known=...)` first.
"""

from __future__ import annotations

import logging
import mimetypes
import os
from typing import (
    Callable,
    Dict,
    Iterable,
    List,
    Optional,
    Tuple,
)

from .bodies import _artifact_entry_name, _artifact_items, _artifact_size, _first_string
from .checks import (
    _artifact_segment,
    _check_string_list,
    _plan_artifact_paths,
    _refuse_existing,
    check_id,
    check_upload_path,
    safe_artifact_path,
)
from .constants import MULTIPART_PART_OVERHEAD, SMALL_ARTIFACT_BYTES, UPLOAD_URL_FIELDS
from .errors import (
    APIConnectionError,
    ArtifactsRefusedError,
    InputError,
    MalformedResponseError,
    OutcomeUnknownError,
    ServerError,
)
from .netio import _as_context
from .resource import _Resource

logger = logging.getLogger("rebyte")


class Artifacts(_Resource):
    """`client.artifacts`: the files of a workspace, listed, downloaded, uploaded, deleted."""

    def _path(self, workspace_id: str, name: Optional[str] = None) -> str:
        path = self._client._path("/workspaces/{workspace_id}/artifacts", workspace_id=workspace_id)
        return path if name is None else f"{path}/{_artifact_segment(name)}"

    def _url(self, workspace_id: str, name: str) -> str:
        return self._client.base_url + self._path(workspace_id, name)

    def list(self, workspace_id: str) -> List[dict]:
        """The files a workspace holds (for a task's, see `client.tasks.workspace_of`).

        Each entry keeps the server's fields and has `name` (str) and `size`
        (int, or None when the server gave none or an unusable one).
        """
        return self._list(check_id(workspace_id, "workspace id"))

    def _list(self, workspace_id: str) -> List[dict]:
        answer = self._client._request("GET", self._path(workspace_id), resource="workspace")
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

    def download(
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
        return self._client._download(
            self._url(workspace_id, name), name, dest_dir, path, overwrite, progress
        )

    def download_all(
        self,
        workspace_id: str,
        names: Optional[Iterable[str]] = None,
        dest_dir: str | os.PathLike[str] = ".",
        *,
        overwrite: bool = False,
        progress: Optional[Callable[[str, int, Optional[int]], None]] = None,
    ) -> List[dict]:
        """Download several artifacts of a workspace (every one when `names` is None)
        into `dest_dir`.

        Every name is checked before the first byte is fetched: an unsafe name, two
        names that would land on the same local file, or an existing file (without
        `overwrite`) raises ArtifactsRefusedError naming each, and nothing is
        downloaded. To fetch the others anyway, call again with
        `names` minus `error.refused`.
        """
        workspace_id = check_id(workspace_id, "workspace id")
        if names is None:
            names = [entry["name"] for entry in self._list(workspace_id)]
        else:
            names = _check_string_list(names, "artifact names")
        planned, refused = _plan_artifact_paths(dest_dir, names)
        existing = [name for name, path in planned if not overwrite and os.path.lexists(path)]
        refused += [(name, f"{path} exists already") for name, path in planned if name in existing]
        if refused:
            raise ArtifactsRefusedError(refused, existing)
        return [
            self._client._download(
                self._url(workspace_id, name), name, dest_dir, path, overwrite, progress
            )
            for name, path in planned
        ]

    def upload(
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
                results += self._upload_large(workspace_id, path, name, size, progress)
                continue
            if budget + cost > SMALL_ARTIFACT_BYTES:
                results += self._post(workspace_id, batch, progress)
                batch, budget = [], 0
            batch.append((path, name, size))
            budget += cost
        if batch:
            results += self._post(workspace_id, batch, progress)
        return results

    def _post(
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
        url = self._client.base_url + self._path(workspace_id)
        hint = (
            f"the files may have been uploaded: check with artifacts.list({workspace_id!r}) "
            "before uploading them again"
        )
        try:
            response, _ = self._client._send(
                "POST",
                url,
                body=lambda: _as_context(data),
                headers={"Content-Type": content_type},
                idempotent=False,
                read_timeout=self._client.create_timeout,
            )
            self._client._raise_for_status("POST", url, response, "workspace")
            try:
                items = _artifact_items(self._client._parse_body("POST", url, response)) or []
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

    def _upload_large(
        self,
        workspace_id: str,
        path: str,
        name: str,
        size: int,
        progress: Optional[Callable[[str, int, Optional[int]], None]],
    ) -> List[dict]:
        content_type = mimetypes.guess_type(name)[0] or "application/octet-stream"
        slot = self._client._request(
            "POST",
            self._path(workspace_id) + "/upload-url",
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
        self._client._put_file(upload_url, path, size, content_type, per_file)
        return [{"name": name, "filename": name, "size": size, "contentType": content_type}]

    def delete(self, workspace_id: str, name: str) -> None:
        """Delete one artifact. A retry that finds it already gone counts as success."""
        workspace_id = check_id(workspace_id, "workspace id")
        path = self._path(workspace_id, name)
        self._client._request(
            "DELETE", path, resource="artifact", expect_json=False, gone_is_done=True
        )

    def delete_all(self, workspace_id: str) -> None:
        """Delete every artifact of a workspace."""
        workspace_id = check_id(workspace_id, "workspace id")
        path = self._path(workspace_id)
        self._client._request("DELETE", path, resource="workspace", expect_json=False)
