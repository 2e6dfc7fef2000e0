"""Workspace artifacts: what a workspace holds (_Artifact), the artifact routes and the
test helpers that read and plant them (Artifacts, a mixin of FakeRebyte), and the
multipart/form-data parsing of an upload.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
import time
import uuid
from dataclasses import dataclass
from email.parser import BytesHeaderParser, HeaderParser
from urllib.parse import quote, unquote

from fakerebyte.base import (
    CHUNK,
    MAX_FILENAME_CHARS,
    Reply,
    _content_type_for,
    _HttpError,
    _invalid,
    _is_multipart,
    _iso_wall,
    _Request,
    _without_markers,
    _xml_error,
    final_result_for,
    generated_chunks,
)

_ARTIFACT_UPLOAD_RE = re.compile(r"/artifact-upload/([0-9a-f-]{36})")
_ARTIFACT_DOWNLOAD_RE = re.compile(r"/artifacts/([^/]+)/([^/]+)")


@dataclass
class _Artifact:
    """One file of a workspace: bytes in memory, a file on disk, or generated from a seed."""

    name: str
    size: int
    content_type: str
    updated: float  # monotonic
    data: bytes | None = None
    path: str | None = None
    seed: str | None = None

    def discard(self) -> None:
        """Remove an uploaded artifact's file (a download already open keeps reading it)."""
        if self.path is not None:
            try:
                os.unlink(self.path)
            except OSError:
                pass

    def chunks(self):
        if self.data is not None:
            for start in range(0, len(self.data), CHUNK):
                yield self.data[start : start + CHUNK]
        elif self.path is not None:
            with open(self.path, "rb") as handle:
                while True:
                    piece = handle.read(CHUNK)
                    if not piece:
                        return
                    yield piece
        else:
            yield from generated_chunks(self.seed or self.name, self.size)


@dataclass
class _ArtifactUpload:
    """A signed upload-url slot: the PUT of its bytes makes the artifact."""

    id: str
    workspace_id: str
    filename: str
    content_type: str | None


@dataclass
class _ByteStream:
    """Returned by the download routes: the handler streams it (it is not held whole)."""

    artifact: _Artifact


class Artifacts:
    """The artifact routes and their test helpers (a mixin of FakeRebyte)."""

    def _workspace_known(self, workspace_id: str) -> bool:
        computer = self._computers.get(workspace_id)
        if computer is not None:
            return not computer.deleted
        return workspace_id in self._workspaces or workspace_id in self._artifacts

    def _workspace_artifacts(self, workspace_id: str, now: float) -> dict:
        """The workspace's artifacts, with those of prompts that succeeded by `now` added
        (a prompt the simulated agent has still to run for waits for _run_agents)."""
        if not self._workspace_known(workspace_id):
            raise _HttpError(404, "not_found", f"Workspace {workspace_id} not found.")
        files = self._artifacts.setdefault(workspace_id, {})
        for task in self._tasks.values():
            if task.workspace_id != workspace_id:
                continue
            for number, prompt in enumerate(task.prompts, 1):
                if prompt.artifacts_left or prompt.silent or prompt.status(now) != "succeeded":
                    continue
                if self._agent_due(task, number - 1, now):  # with its patch, after its run
                    continue
                prompt.artifacts_left = True
                report = (
                    f"# Report {number}\n\nPrompt: {_without_markers(prompt.text)}\n\n"
                    f"{final_result_for(prompt.text)}\n"
                ).encode()
                name = f"report-{number}.md"
                files[name] = _Artifact(
                    name, len(report), _content_type_for(name), prompt.ends, data=report
                )
                name = f"output-{number}.bin"
                files[name] = _Artifact(
                    name,
                    int(self.artifact_bytes_knob),
                    "application/octet-stream",
                    prompt.ends,
                    seed=f"{workspace_id}/{name}",
                )
        return files

    def _artifact_json(self, artifact: _Artifact) -> dict:
        return {
            self.artifact_name_field: artifact.name,
            "size": artifact.size,
            "contentType": artifact.content_type,
            "updatedAt": self._iso(artifact.updated),
        }

    def _list_artifacts(self, request: _Request, workspace_id: str) -> Reply:
        self._run_agents(workspace_id)  # first: outside the lock
        with self._lock:
            files = self._workspace_artifacts(workspace_id, self._now())
            entries = [
                self._artifact_json(item)
                for item in sorted(files.values(), key=lambda item: item.name)
            ]
        if self.artifacts_wrapper == "bare":
            return Reply.json(200, entries)
        return Reply.json(200, {self.artifacts_wrapper: entries})

    def _artifact(self, workspace_id: str, name: str) -> _Artifact:
        artifact = self._workspace_artifacts(workspace_id, self._now()).get(name)
        if artifact is None:
            raise _HttpError(
                404, "not_found", f"Artifact {name!r} not found in workspace {workspace_id}."
            )
        return artifact

    def _get_artifact(self, request: _Request, workspace_id: str, name: str):
        self._run_agents(workspace_id)  # first: outside the lock
        with self._lock:
            artifact = self._artifact(workspace_id, name)
        if self.artifact_download == "direct":
            return _ByteStream(artifact)
        expires = int(time.time() + self.upload_url_ttl)
        signature = self._sign_download(workspace_id, name, expires)
        location = (
            f"{self.upload_base_url}/artifacts/{quote(workspace_id, safe='')}/"
            f"{quote(name, safe='')}?expires={expires}&signature={signature}"
        )
        return Reply(302, headers={"Location": location})

    def _sign_download(self, workspace_id: str, name: str, expires) -> str:
        message = f"GET\n{workspace_id}\n{name}\n{expires}".encode()
        return hmac.new(self._signing_key, message, "sha256").hexdigest()

    def _download_target(self, path: str, query: dict):
        """The _Artifact a signed download URL names, or the storage host's XML error."""
        match = _ARTIFACT_DOWNLOAD_RE.fullmatch(path)
        expires, signature = query.get("expires", ""), query.get("signature", "")
        if match is None or not expires.isdigit():
            return _xml_error(403, "SignatureDoesNotMatch", "The signature is missing.")
        workspace_id, name = unquote(match.group(1)), unquote(match.group(2))
        if not hmac.compare_digest(signature, self._sign_download(workspace_id, name, expires)):
            return _xml_error(
                403,
                "SignatureDoesNotMatch",
                "The request signature we calculated does not match the signature you provided.",
            )
        if time.time() >= int(expires):
            return _xml_error(403, "ExpiredToken", "The provided token has expired.")
        with self._lock:
            artifact = self._artifacts.get(workspace_id, {}).get(name)
        if artifact is None:
            return _xml_error(404, "NoSuchKey", "The specified key does not exist.")
        return artifact

    def _post_artifacts(self, request: _Request, workspace_id: str) -> Reply:
        self._run_agents(workspace_id)  # first: outside the lock
        with self._lock:
            self._workspace_artifacts(workspace_id, self._now())
        parts = _multipart_files(request.headers, request.raw or b"")
        with self._lock:
            files = self._workspace_artifacts(workspace_id, self._now())
            now = self._now()
            made = []
            for filename, content_type, data in parts:
                if filename in files:
                    files[filename].discard()
                files[filename] = _Artifact(filename, len(data), content_type, now, data=data)
                made.append(self._artifact_json(files[filename]))
        if self.artifact_upload_wrapper == "bare":
            return Reply.json(201, made)
        return Reply.json(201, {self.artifact_upload_wrapper: made})

    def _artifact_upload_url(self, request: _Request, workspace_id: str) -> Reply:
        self._run_agents(workspace_id)  # first: outside the lock
        with self._lock:
            self._workspace_artifacts(workspace_id, self._now())
        body = request.json_object()
        filename = _valid_artifact_name(body.get("filename"))
        content_type = body.get("contentType")
        if content_type is not None and (
            not isinstance(content_type, str) or not content_type.strip()
        ):
            raise _invalid("contentType must be a non-empty string")
        slot = _ArtifactUpload(str(uuid.uuid4()), workspace_id, filename, content_type)
        with self._lock:
            self._artifact_uploads[slot.id] = slot
        expires = int(time.time() + self.upload_url_ttl)
        upload_url = (
            f"{self.upload_base_url}/artifact-upload/{slot.id}?expires={expires}"
            f"&signature={self._sign(slot.id, expires)}"
        )
        return Reply.json(
            201,
            {
                self.upload_url_field: upload_url,
                "filename": filename,
                "expiresAt": _iso_wall(expires),
            },
        )

    def _artifact_upload_target(self, path: str, query: dict):
        match = _ARTIFACT_UPLOAD_RE.fullmatch(path)
        expires, signature = query.get("expires", ""), query.get("signature", "")
        if (
            match is None
            or not expires.isdigit()
            or not hmac.compare_digest(signature, self._sign(match.group(1), expires))
        ):
            return _xml_error(
                403,
                "SignatureDoesNotMatch",
                "The request signature we calculated does not match the signature you provided.",
            )
        if time.time() >= int(expires):
            return _xml_error(403, "ExpiredToken", "The provided token has expired.")
        with self._lock:
            slot = self._artifact_uploads.get(match.group(1))
        if slot is None:
            return _xml_error(404, "NoSuchUpload", "The requested upload was not found.")
        return slot

    def _artifact_uploaded(
        self, slot: _ArtifactUpload, path: str, size: int, content_type: str | None
    ) -> None:
        with self._lock:
            files = self._artifacts.setdefault(slot.workspace_id, {})
            if slot.filename in files:
                files[slot.filename].discard()
            files[slot.filename] = _Artifact(
                slot.filename,
                size,
                slot.content_type or content_type or _content_type_for(slot.filename),
                self._now(),
                path=path,
            )

    def _delete_artifact(self, request: _Request, workspace_id: str, name: str) -> Reply:
        self._run_agents(workspace_id)  # first: outside the lock
        with self._lock:
            self._artifact(workspace_id, name).discard()
            del self._artifacts[workspace_id][name]
        return Reply(204)

    def _delete_all_artifacts(self, request: _Request, workspace_id: str) -> Reply:
        self._run_agents(workspace_id)  # first: outside the lock
        with self._lock:
            files = self._workspace_artifacts(workspace_id, self._now())
            for artifact in files.values():
                artifact.discard()
            files.clear()
        return Reply(204)

    def add_artifact(
        self,
        workspace_id: str,
        name: str,
        data: bytes | None = None,
        size: int | None = None,
        content_type: str | None = None,
    ) -> None:
        """Plant an artifact under any name (hostile ones too); the workspace need not exist.

        `data`: these bytes; `size` alone: that many deterministic generated bytes, made
        while they are sent, never held whole (1 GiB is fine).
        """
        if (data is None) == (size is None):
            raise ValueError("give data or size, not both")
        content_type = content_type or _content_type_for(name)
        with self._lock:
            files = self._artifacts.setdefault(workspace_id, {})
            if data is not None:
                files[name] = _Artifact(
                    name, len(data), content_type, self._now(), data=bytes(data)
                )
            else:
                files[name] = _Artifact(
                    name, int(size), content_type, self._now(), seed=f"{workspace_id}/{name}"
                )

    def _artifact_for_test(self, workspace_id: str, name: str) -> _Artifact:
        self._run_agents(workspace_id)  # first: outside the lock
        with self._lock:
            if self._workspace_known(workspace_id):
                self._workspace_artifacts(workspace_id, self._now())
            artifact = self._artifacts.get(workspace_id, {}).get(name)
        if artifact is None:
            raise KeyError(f"no artifact {name!r} in workspace {workspace_id}")
        return artifact

    def artifact_bytes(self, workspace_id: str, name: str) -> bytes:
        """The bytes of an artifact, whole (for small ones; see artifact_sha256)."""
        return b"".join(self._artifact_for_test(workspace_id, name).chunks())

    def artifact_sha256(self, workspace_id: str, name: str) -> str:
        """The hex SHA-256 of an artifact, computed in constant memory (for large ones)."""
        digest = hashlib.sha256()
        for piece in self._artifact_for_test(workspace_id, name).chunks():
            digest.update(piece)
        return digest.hexdigest()

    def artifact_names(self, workspace_id: str) -> list:
        """The names of a workspace's artifacts, sorted (what the list route would show)."""
        self._run_agents(workspace_id)  # first: outside the lock
        with self._lock:
            if self._workspace_known(workspace_id):
                self._workspace_artifacts(workspace_id, self._now())
            return sorted(self._artifacts.get(workspace_id, {}))


def _valid_artifact_name(name) -> str:
    if name is None:
        raise _invalid("filename is required")
    if not isinstance(name, str) or not name.strip():
        raise _invalid("filename must be a non-empty string")
    if len(name) > MAX_FILENAME_CHARS:
        raise _invalid(f"filename is longer than {MAX_FILENAME_CHARS} characters")
    if "\0" in name:
        raise _invalid("filename must not contain NUL")
    return name


def _multipart_files(headers, raw: bytes) -> list:
    """(filename, content type, bytes) of each part named "file" of a multipart/form-data body.

    A small splitter on the boundary (the body is at most MAX_ARTIFACT_FORM bytes); each
    part's headers (UTF-8, as browsers and requests send them; filename* works too) go
    through the stdlib's header parser.
    """
    if not _is_multipart(headers):
        raise _invalid(
            "upload artifacts as multipart/form-data with parts named 'file' "
            "(large files: POST .../artifacts/upload-url)"
        )
    declared = BytesHeaderParser().parsebytes(
        b"Content-Type: " + (headers.get("Content-Type") or "").encode("latin-1") + b"\r\n\r\n"
    )
    boundary = declared.get_param("boundary")
    if not isinstance(boundary, str) or not boundary or len(boundary) > 200:
        raise _invalid("multipart/form-data needs a boundary parameter")
    delimiter = b"--" + boundary.encode("latin-1")
    pieces = raw.split(b"\r\n" + delimiter)
    if not pieces[0].startswith(delimiter) or not pieces[-1].startswith(b"--"):
        raise _invalid("malformed multipart/form-data body")
    files = []
    for piece in [pieces[0][len(delimiter) :], *pieces[1:-1]]:
        head, separator, data = piece.partition(b"\r\n\r\n")
        if not separator or not head.startswith(b"\r\n"):
            raise _invalid("malformed multipart/form-data part")
        try:
            part = HeaderParser().parsestr(head[2:].decode("utf-8") + "\r\n\r\n")
        except UnicodeDecodeError:
            raise _invalid("multipart part headers must be UTF-8") from None
        if part.get_param("name", header="content-disposition") != "file":
            continue
        filename = part.get_filename()
        if isinstance(filename, str):  # the HTML form encoding of these three characters
            for escaped, character in (("%22", '"'), ("%0D", "\r"), ("%0A", "\n")):
                filename = filename.replace(escaped, character)
        filename = _valid_artifact_name(filename)
        content_type = (
            part.get_content_type() if part.get("Content-Type") else (_content_type_for(filename))
        )
        files.append((filename, content_type, data))
    if not files:
        raise _invalid("no part named 'file' in the multipart/form-data body")
    return files
