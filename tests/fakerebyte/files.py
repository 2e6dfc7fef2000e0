"""File uploads: POST /v1/files makes a slot (Files, a mixin of FakeRebyte), and the
storage listener takes the signed PUTs of files and of artifacts (StorageUploads, a mixin
of the HTTP handler in fakerebyte.http).
"""

from __future__ import annotations

import hmac
import os
import re
import secrets
import tempfile
import time
import uuid
from dataclasses import dataclass

from fakerebyte.base import (
    CHUNK,
    MAX_DRAIN,
    MAX_FILENAME_CHARS,
    Reply,
    _invalid,
    _Request,
    _xml_error,
)

_UPLOAD_PATH_RE = re.compile(r"/upload/([0-9a-f-]{36})")
BUNDLE_SUFFIX = ".bundle"  # uploads named so are kept (fakerebyte.agent runs on them)


@dataclass
class _File:
    id: str
    filename: str
    content_type: str
    uploaded: bool = False
    size: int = 0
    kept: str | None = None  # a git bundle's bytes, kept on disk for the simulated agent

    @property
    def is_bundle(self) -> bool:
        return self.filename.endswith(BUNDLE_SUFFIX)


class Files:
    """The files route and the upload slots it signs (a mixin of FakeRebyte)."""

    def _create_file(self, request: _Request) -> Reply:
        body = request.json_object()
        filename = body.get("filename")
        if filename is None:
            raise _invalid("filename is required")
        if not isinstance(filename, str) or not filename.strip():
            raise _invalid("filename must be a non-empty string")
        if len(filename) > MAX_FILENAME_CHARS:
            raise _invalid(f"filename is longer than {MAX_FILENAME_CHARS} characters")
        if "/" in filename or "\0" in filename:
            raise _invalid("filename must not contain '/' (a name, not a path)")
        content_type = body.get("contentType", "application/octet-stream")
        if not isinstance(content_type, str) or not content_type.strip():
            raise _invalid("contentType must be a non-empty string")
        stem, extension = os.path.splitext(filename)
        with self._lock:
            taken = {record.filename for record in self._files.values()}
            while True:
                file_id = str(uuid.uuid4())
                unique = f"{stem}-{file_id[:4]}{extension}"
                if unique not in taken:
                    break
            self._files[file_id] = _File(file_id, unique, content_type)
        expires = int(time.time() + self.upload_url_ttl)
        upload_url = (
            f"{self.upload_base_url}/upload/{file_id}?expires={expires}"
            f"&signature={self._sign(file_id, expires)}"
        )
        return Reply.json(201, {"id": file_id, "filename": unique, "uploadUrl": upload_url})

    def _sign(self, file_id: str, expires) -> str:
        message = f"PUT\n{file_id}\n{expires}".encode()
        return hmac.new(self._signing_key, message, "sha256").hexdigest()

    def _upload_target(self, path: str, query: dict):
        """The _File a signed upload URL names, or the XML error a storage host would give."""
        match = _UPLOAD_PATH_RE.fullmatch(path)
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
            return _xml_error(
                403,
                "ExpiredToken",
                f"The provided token has expired. Request signature expired at: {expires}",
            )
        with self._lock:
            record = self._files.get(match.group(1))
        if record is None:
            return _xml_error(404, "NoSuchUpload", "The requested upload was not found.")
        return record

    def _upload_finished(self, record: _File, size: int, kept: str | None) -> None:
        with self._lock:
            if record.kept is not None and record.kept != kept:  # uploaded again
                _unlink(record.kept)
            record.uploaded, record.size, record.kept = True, size, kept

    def _kept_folder(self) -> str:
        """The server's temporary folder for kept bundles and agent clones (made when first
        needed; stop() deletes it with everything in it)."""
        with self._lock:
            if self._agent_dir is None:
                self._agent_dir = tempfile.mkdtemp(prefix="fake-rebyte-agent-")
            return self._agent_dir

    def file_info(self, file_id: str) -> dict | None:
        """What the server knows of a file slot: filename, contentType, uploaded, size."""
        with self._lock:
            record = self._files.get(file_id)
            if record is None:
                return None
            return {
                "id": record.id,
                "filename": record.filename,
                "contentType": record.content_type,
                "uploaded": record.uploaded,
                "size": record.size,
            }


class StorageUploads:
    """The signed PUTs of the storage listener (a mixin of the HTTP handler)."""

    def _chunked(self) -> bool:
        return "chunked" in self.headers.get("Transfer-Encoding", "").lower()

    def _upload(self, entry: dict, path: str, query: dict) -> Reply:
        """The storage host: a signed PUT with a Content-Length, streamed to disk or counted."""
        if self.command != "PUT":
            entry["body_bytes"] = self._drop_body(limit=MAX_DRAIN)
            return _xml_error(
                405, "MethodNotAllowed", "Only PUT is accepted here.", headers={"Allow": "PUT"}
            )
        length = self._content_length()
        if length is None or self._chunked():
            entry["body_bytes"] = self._drop_body(limit=MAX_DRAIN)
            return _missing_length()
        record = self.fake._upload_target(path, query)
        if isinstance(record, Reply):
            entry["body_bytes"] = self._drop_body(limit=MAX_DRAIN)
            return record
        sent_type = self.headers.get("Content-Type")
        if sent_type != record.content_type:
            entry["body_bytes"] = self._drop_body(limit=MAX_DRAIN)
            return _xml_error(
                403,
                "SignatureDoesNotMatch",
                f"Content-Type {sent_type!r} does not match the signed {record.content_type!r}.",
            )
        received, kept = self._store_body(record, length)
        entry["body_bytes"] = received
        if received < length:
            raise ConnectionAbortedError("the client sent less than its Content-Length")
        self.fake._upload_finished(record, received, kept)
        return Reply(200, headers={"ETag": f'"{secrets.token_hex(16)}"'})

    def _artifact_put(self, entry: dict, path: str, query: dict) -> Reply:
        """A signed artifact upload: the streamed body becomes the artifact (on disk)."""
        length = self._content_length()
        if length is None or self._chunked():
            entry["body_bytes"] = self._drop_body(limit=MAX_DRAIN)
            return _missing_length()
        slot = self.fake._artifact_upload_target(path, query)
        if isinstance(slot, Reply):
            entry["body_bytes"] = self._drop_body(limit=MAX_DRAIN)
            return slot
        sent_type = self.headers.get("Content-Type")
        if slot.content_type is not None and sent_type != slot.content_type:
            entry["body_bytes"] = self._drop_body(limit=MAX_DRAIN)
            return _xml_error(
                403,
                "SignatureDoesNotMatch",
                f"Content-Type {sent_type!r} does not match the signed {slot.content_type!r}.",
            )
        handle, temporary = tempfile.mkstemp(dir=self.fake._artifact_dir.name)
        received = 0
        with os.fdopen(handle, "wb") as out:
            buffer = memoryview(bytearray(CHUNK))
            while received < length:
                count = self.rfile.readinto(buffer[: min(CHUNK, length - received)])
                if not count:
                    break
                out.write(buffer[:count])
                received += count
        entry["body_bytes"] = received
        if received < length:
            os.unlink(temporary)
            raise ConnectionAbortedError("the client sent less than its Content-Length")
        self.fake._artifact_uploaded(slot, temporary, received, sent_type)
        return Reply(200, headers={"ETag": f'"{secrets.token_hex(16)}"'})

    def _store_body(self, record: _File, length: int) -> tuple:
        """(bytes received, the kept copy or None): the body, CHUNK by CHUNK, goes to
        upload_dir (replacing at the end) and, for a git bundle, to the server's temporary
        folder (kept for the simulated agent); otherwise it is only counted."""
        outputs = []  # (open file, temporary path, final path or None: kept where it is)
        if self.fake.upload_dir is not None:
            handle, temporary = tempfile.mkstemp(dir=self.fake.upload_dir, prefix=".upload-")
            final = os.path.join(self.fake.upload_dir, record.filename)
            outputs.append((os.fdopen(handle, "wb"), temporary, final))
        if record.is_bundle:
            folder = self.fake._kept_folder()
            handle, temporary = tempfile.mkstemp(dir=folder, prefix="upload-", suffix=".bundle")
            outputs.append((os.fdopen(handle, "wb"), temporary, None))
        buffer = memoryview(bytearray(CHUNK))
        received = 0
        try:
            while received < length:
                count = self.rfile.readinto(buffer[: min(CHUNK, length - received)])
                if not count:
                    break
                for out, _, _ in outputs:
                    out.write(buffer[:count])
                received += count
        finally:
            kept = None
            for out, temporary, final in outputs:
                out.close()
                if received != length:
                    _unlink(temporary)
                elif final is not None:
                    os.replace(temporary, final)
                else:
                    kept = temporary
        return received, kept


def _unlink(path: str) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass


def _missing_length() -> Reply:
    """What a signed-URL host answers a body of unknown length (S3's 411)."""
    return _xml_error(
        411, "MissingContentLength", "You must provide the Content-Length HTTP header.", close=True
    )
