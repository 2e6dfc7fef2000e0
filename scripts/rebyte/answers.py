"""The answers half of the transport: bodies read within bounds, errors mapped, secrets scrubbed."""

from __future__ import annotations

import urllib.parse
from typing import (
    Any,
    Dict,
    Iterator,
    Optional,
    Tuple,
)

from .bodies import _FIELD_KINDS, _describe_body, _kind_of, _loads, _reason_phrase, _request_id
from .config import _is_loopback, _redact_key, _retry_after_seconds, _without_query
from .constants import ANSWER_CHUNK_BYTES
from .errors import (
    APIConnectionError,
    APIError,
    APITimeoutError,
    AuthenticationError,
    MalformedResponseError,
    NotFoundError,
    RateLimitError,
    ServerError,
    ValidationError,
)
from .failures import _caused_by_read_timeout, _never_connected, _short_reason, _tls_detail
from .netio import _Abandon


class _Answers:
    """Reading answers: a whole body within its size, and a failure mapped to its typed error,
    with the key scrubbed from anything shown."""

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
