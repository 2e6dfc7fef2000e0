"""Exit codes, and the one line an error ends a command with: what went wrong, what to do."""

from __future__ import annotations

from .output import RUN

EXIT_OK = 0
EXIT_TASK_FAILED = 1
EXIT_USAGE = 2
EXIT_AUTH = 3
EXIT_NOT_FOUND = 4
EXIT_API = 5
EXIT_NETWORK = 6
EXIT_WAIT_TIMEOUT = 7
EXIT_NO_PATCH = 8  # `diff`, `apply`: the task left no patch in its workspace
EXIT_CONFLICT = 9  # `apply`: the patch conflicts with the local tree; nothing was changed
EXIT_INTERNAL = 70  # sysexits' EX_SOFTWARE: a bug here, not a problem of the user's
EXIT_INTERRUPTED = 130


class UsageError(Exception):
    """Bad arguments or local input, found before anything was sent (exit 2)."""


class TaskOutcome(Exception):
    """Ends a command with an exit code after its output was printed."""

    def __init__(self, code: int, message: str = "") -> None:
        super().__init__(message)
        self.code = code


def exit_code_for(rc, error: BaseException) -> int:
    if isinstance(error, (UsageError, rc.InputError)):
        return EXIT_USAGE
    if isinstance(error, (rc.ConfigurationError, rc.AuthenticationError)):
        return EXIT_AUTH
    if isinstance(error, rc.NotFoundError):
        return EXIT_NOT_FOUND
    if isinstance(error, rc.WaitTimeoutError):
        return EXIT_WAIT_TIMEOUT
    if isinstance(error, (rc.ServerError, rc.MalformedResponseError)):
        return EXIT_NETWORK
    if isinstance(error, rc.APIError):
        return EXIT_API if error.status and 400 <= error.status < 500 else EXIT_NETWORK
    if isinstance(error, TaskOutcome):
        return error.code
    if isinstance(error, rc.ProvisionError):
        return EXIT_TASK_FAILED
    if isinstance(error, (rc.APIConnectionError, rc.OutcomeUnknownError)):
        return EXIT_NETWORK
    return EXIT_INTERNAL


def worst_exit(codes) -> int:
    """The exit code of several tasks that ended differently: errors over outcomes, 0 if none."""
    order = [EXIT_OK, EXIT_TASK_FAILED, EXIT_WAIT_TIMEOUT, EXIT_NO_PATCH, EXIT_CONFLICT]
    order += [EXIT_NOT_FOUND, EXIT_API, EXIT_NETWORK, EXIT_USAGE, EXIT_AUTH]
    return max(codes, key=lambda c: order.index(c) if c in order else len(order), default=EXIT_OK)


def explain(rc, error: BaseException) -> str:
    """The one-line message for an error: what went wrong, then what to do."""
    text = str(error)
    if isinstance(error, rc.AuthenticationError):
        return (
            f"the API refused the key: {text}; check REBYTE_API_KEY (get a key at {rc.API_KEY_URL})"
        )
    if isinstance(error, rc.WorkspaceUnknownError):
        return (
            f"{text}; pass it with --workspace WORKSPACE_ID (tasks this machine created are "
            f"in `{RUN} recent`)"
        )
    if isinstance(error, rc.NotFoundError):
        advice = NOT_FOUND_ADVICE.get(getattr(error, "resource", None), NOT_FOUND_ADVICE[None])
        return f"{text}; {advice}"
    if isinstance(error, rc.WaitTimeoutError) and error.resource == "computer":
        return (
            f"{text}; the computer keeps provisioning: wait again with "
            f"`{RUN} computer wait {error.resource_id}`"
        )
    if isinstance(error, rc.WaitTimeoutError):
        url = (error.last_task or {}).get("url")
        at = f" ({url})" if isinstance(url, str) and url else ""
        return (
            f"{text}; the task is still running{at}: wait again with `{RUN} wait {error.task_id}`"
        )
    if isinstance(error, rc.ProvisionError):
        computer_id = (error.computer or {}).get("id", "ID")
        return f"{text}; delete it with `{RUN} computer delete {computer_id} --yes`"
    if isinstance(error, rc.RateLimitError):
        after = f" after {error.retry_after:g}s" if error.retry_after is not None else " later"
        return f"{text}; rate limited: try again{after}"
    if isinstance(error, rc.OutcomeUnknownError):
        advice = OUTCOME_UNKNOWN_ADVICE.get(getattr(error, "operation", None))
        if advice is None:
            return text
        return f"{error.message}; {advice.format(id=error.resource_id or 'ID')}"
    if isinstance(error, rc.APIConnectionError):
        unsent = "" if error.maybe_sent else ": nothing was sent"
        return f"{text}{unsent}; check the network and --base-url, then try again"
    if isinstance(error, rc.ServerError):
        return f"{text}; the server failed: try again later"
    return text


# The advice after a 404, by the kind of resource the request named (None: a collection route).
NOT_FOUND_ADVICE = {
    "task": f"the task may have been deleted: list tasks with `{RUN} list`",
    "computer": f"the computer may have been deleted: list computers with `{RUN} computer list`",
    "webhook": f"the webhook may have been deleted: list webhooks with `{RUN} webhook list`",
    "artifact": f"the artifact may have been deleted: list them with `{RUN} artifacts list ID`",
    "workspace": f"no task or workspace has that id: list tasks with `{RUN} list`",
    None: "the API has no such route: check --base-url / REBYTE_BASE_URL (it should end in /v1)",
}


# How to check whether a once-only call the server may have run did, by operation; {id}: its id.
OUTCOME_UNKNOWN_ADVICE = {
    "create_task": "the task may have been created: "
    f"check with `{RUN} recent` (or `{RUN} list --limit 5`) before creating it again",
    "follow_up": "the follow-up may have been sent: "
    f"check with `{RUN} get {{id}}` before sending it again",
    "create_computer": "the computer may have been created: "
    f"check with `{RUN} computer list --limit 5` before creating it again",
    "add_webhook": "the webhook may have been added: "
    f"check with `{RUN} webhook list` before adding it again",
    "upload_artifacts": "the files may have been uploaded: "
    f"check with `{RUN} artifacts list {{id}}` before uploading them again",
}
