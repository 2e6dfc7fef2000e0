"""The HTTP core: configuration, the session, and the one send path that every request takes."""

from __future__ import annotations

import os
import time
import urllib.parse
from typing import (
    Any,
    Callable,
    ContextManager,
    Dict,
    Optional,
    Tuple,
    TypeVar,
)

from .answers import _Answers
from .bodies import _check_storage_url
from .checks import check_id
from .config import (
    _ca_bundle_from_env,
    _check_api_key,
    _check_base_url,
    _check_positive,
    _env_float,
    _env_int,
    _import_requests,
    _is_loopback,
    _redact_key,
    _without_query,
)
from .constants import (
    API_KEY_ENV,
    DEFAULT_BASE_URL,
    DEFAULT_CONNECT_TIMEOUT,
    DEFAULT_CREATE_TIMEOUT,
    DEFAULT_MAX_RETRIES,
    DEFAULT_READ_TIMEOUT,
    MAX_ANSWER_BYTES,
    RESULT_SETTLE_SECONDS,
    __version__,
)
from .errors import (
    APIConnectionError,
    ConfigurationError,
    MalformedResponseError,
    OutcomeUnknownError,
    RebyteError,
    ServerError,
)
from .loops import _Loops
from .netio import _Abandon, _BodyProgress, _no_body, _no_credentials, _TrackedReader
from .retries import _Retries
from .streaming import _Streams
from .transfers import _Transfers

_Self = TypeVar("_Self", bound="_Transport")


# A little over 300 lines: configuration (each setting from its argument or the environment)
# and the one send path belong together; the rest of the core is in the mixins.
class _Transport(_Answers, _Retries, _Loops, _Streams, _Transfers):
    """Configuration, the session, and the one send path: retries, deadlines, error mapping.

    Every HTTP request goes through `_send`, which refuses redirects, gives the
    API key only to the API host, keeps the deadline and maps transport errors.
    The endpoints live in the resources (rebyte/tasks.py, ...), over `_request`
    and `_send_once_only`.
    """

    # Over 300 lines: the configuration checks and the one send path they configure; all
    # else is in the mixins (answers, retries, loops, streams, transfers).

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
        # How long tasks.result reads a succeeded prompt again for an answer that lags its status.
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
        self._open_session(pool_size)

    def _open_session(self, pool_size: int) -> None:
        """The one `requests.Session`: pooled, without redirects, ambient credentials or cookies."""
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

    # Over 60 lines with its docstring: the one send path, kept whole so that every option a
    # request can take (key, redirects, body, deadline, watchdog) is read in one place.
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
        # Over 60 lines: every request's one path (headers, a body per attempt, the deadline,
        # the bounded read), kept whole so that no request can skip a step.
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
