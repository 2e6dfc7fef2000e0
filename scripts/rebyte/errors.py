"""The error tree: every failure of the client is a `RebyteError`."""

from __future__ import annotations

from typing import (
    Any,
    Iterable,
    List,
    Optional,
    Tuple,
)


class RebyteError(Exception):
    """Base of every error this client raises."""


class InputError(RebyteError, ValueError):
    """A bad argument, caught before anything was sent."""


class ArtifactsRefusedError(InputError):
    """Artifacts that cannot be downloaded safely; nothing was downloaded.

    `refused` lists (name, reason) for each: a name that would escape the
    destination or that the file system refuses, two names for one local
    file, or a file that exists already.
    """

    def __init__(self, refused: List[Tuple[str, str]], existing: Iterable[str] = ()) -> None:
        self.refused = list(refused)
        # The names refused only because their local file exists (see `overwrite`).
        self.existing = list(existing)
        shown = "; ".join(f"{name!r}: {reason}" for name, reason in self.refused[:5])
        more = f" (and {len(self.refused) - 5} more)" if len(self.refused) > 5 else ""
        super().__init__(f"{len(self.refused)} artifact(s) refused: {shown}{more}")


class WorkspaceUnknownError(InputError):
    """The workspace of a task is not known here: the API shows it only in the create answer."""

    def __init__(self, task_id: str) -> None:
        self.task_id = task_id
        super().__init__(
            f"the workspace of task {task_id} is unknown: the API gives a task's workspaceId "
            "only in its create answer, and this task's was not kept"
        )


class ConfigurationError(RebyteError):
    """No usable API key or base URL: nothing was sent."""


class APIError(RebyteError):
    """The API (or the storage host) answered with an error."""

    def __init__(
        self,
        message: str,
        *,
        status: Optional[int] = None,
        code: Optional[str] = None,
        request_id: Optional[str] = None,
        method: Optional[str] = None,
        url: Optional[str] = None,
        resource: Optional[str] = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.code = code
        self.request_id = request_id
        self.method = method
        self.url = url
        # The noun of the one resource the request path names ("task", ...); None for a collection.
        self.resource = resource

    def __str__(self) -> str:
        details = [f"HTTP {self.status}"] if self.status else []
        if self.code:
            details.append(self.code)
        if self.request_id:
            details.append(f"request id {self.request_id}")
        return f"{self.message} ({', '.join(details)})" if details else self.message


class AuthenticationError(APIError):
    """401 or 403: the key is missing, wrong, or lacks a scope."""


class NotFoundError(APIError):
    """404: no such resource (`resource` says which kind), or no such route (`resource` None)."""


class ValidationError(APIError):
    """400 or 422: the API rejected the request's content."""


class RateLimitError(APIError):
    """429 after the allowed retries; `retry_after` is the server's hint in seconds."""

    def __init__(self, message: str, *, retry_after: Optional[float] = None, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.retry_after = retry_after


class ServerError(APIError):
    """5xx after the allowed retries."""


class UploadError(APIError):
    """The storage host refused the file (often an expired upload URL)."""


class MalformedResponseError(APIError):
    """A success status with a body that is not what the contract promises."""


class APIConnectionError(RebyteError):
    """The server could not be reached or the connection broke.

    `maybe_sent` is False only when no connection was ever made, so the
    server cannot have seen the request.
    """

    def __init__(self, message: str, *, maybe_sent: bool = True) -> None:
        super().__init__(message)
        self.maybe_sent = maybe_sent


class APITimeoutError(APIConnectionError):
    """No answer within the configured timeout."""


class OutcomeUnknownError(RebyteError):
    """A create or follow-up failed after the server may have acted on it.

    It is not retried, since a second try could start a second VM or run the
    prompt twice. `hint` says in library terms how to check what happened;
    `operation` ("create_task", "follow_up", ...) and `resource_id` let a caller
    word its own advice.
    """

    def __init__(
        self,
        message: str,
        *,
        hint: str,
        cause: Optional[BaseException] = None,
        operation: str,
        resource_id: Optional[str] = None,
    ) -> None:
        super().__init__(f"{message}; {hint}")
        self.message = message
        self.hint = hint
        self.cause = cause
        self.operation = operation
        self.resource_id = resource_id


class WaitTimeoutError(RebyteError):
    """The wait ran out while the task (or prompt) was still running.

    `resource` is the kind of thing waited on and `resource_id` its id; for a
    task, `task_id` is that id too.
    """

    def __init__(
        self,
        message: str,
        *,
        task_id: Optional[str] = None,
        prompt_id: Optional[str] = None,
        last_task: Optional[dict] = None,
        last_error: Optional[BaseException] = None,
        resource: str = "task",
        resource_id: Optional[str] = None,
    ) -> None:
        super().__init__(message)
        self.resource = resource
        self.resource_id = resource_id if resource_id is not None else task_id
        self.task_id = task_id
        self.prompt_id = prompt_id
        self.last_task = last_task
        self.last_error = last_error


class ProvisionError(RebyteError):
    """An Agent Computer ended in `error` instead of `ready`.

    `computer` is the last object seen; `provision_error` the server's reason
    (None when it gave none).
    """

    def __init__(self, message: str, *, computer: dict, provision_error: Optional[str]) -> None:
        super().__init__(message)
        self.computer = computer
        self.provision_error = provision_error
