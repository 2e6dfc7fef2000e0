"""Python client for Rebyte's v1 task API: spawn cloud coding-agent tasks and follow them.

    from rebyte_client import RebyteClient
    client = RebyteClient()                      # key from REBYTE_API_KEY
    task = client.tasks.create("Add unit tests", skills=["deep-research"])
    print(task["url"])                           # live at once: give it to the user
    done = client.tasks.wait(task["id"])
    print(done["status"], client.tasks.result(task["id"]))

The endpoints are grouped by resource, one way to do each thing: `client.tasks`
(create, get, list, iter, follow_up, set_visibility, cancel, delete, content,
result, wait, events, workspace_of), `client.files` (upload), `client.artifacts`
(list, download, download_all, upload, delete, delete_all: a workspace id each),
`client.computers` (create, get, list, iter, wait, delete) and `client.webhooks`
(create, list, get, delete, public_key). `Tasks.body(...)` builds and checks a
create's JSON body without a client (for dry runs).

A library: it never prints or exits. Every failure is a subclass of `RebyteError`.
Only `requests` is needed, and it is imported on first use, so importing this
module (for its errors or validators) costs nothing.

This file is the face of the `rebyte` package beside it (rebyte/client.py, the
resources in rebyte/tasks.py, files.py, artifacts.py, computers.py, webhooks.py,
over rebyte/transport.py); it names what callers may rely on.
"""

if __package__:  # `from scripts.rebyte_client import ...`, from the skill's root folder
    from .rebyte import checks as _checks
    from .rebyte import client as _client
    from .rebyte import constants as _constants
    from .rebyte import errors as _errors
    from .rebyte import tasks as _tasks
    from .rebyte import taskstate as _taskstate
else:  # scripts/ on sys.path: how the CLI and the tests import it
    from rebyte import checks as _checks
    from rebyte import client as _client
    from rebyte import constants as _constants
    from rebyte import errors as _errors
    from rebyte import tasks as _tasks
    from rebyte import taskstate as _taskstate

__all__ = [
    "RebyteClient",
    "Tasks",
    "RebyteError",
    "InputError",
    "ConfigurationError",
    "APIError",
    "AuthenticationError",
    "NotFoundError",
    "ValidationError",
    "RateLimitError",
    "ServerError",
    "UploadError",
    "MalformedResponseError",
    "APIConnectionError",
    "APITimeoutError",
    "OutcomeUnknownError",
    "WaitTimeoutError",
    "ProvisionError",
    "normalize_github_repo",
    "check_prompt",
    "check_id",
    "check_task_id",
    "check_upload_path",
    "safe_artifact_path",
    "ArtifactsRefusedError",
    "WorkspaceUnknownError",
    "SMALL_ARTIFACT_BYTES",
    "is_terminal",
    "DEFAULT_BASE_URL",
    "API_KEY_URL",
    "API_KEY_ENV",
    "WEBHOOK_EVENTS",
    "COMPUTER_STATUSES",
]

RebyteClient = _client.RebyteClient
Tasks = _tasks.Tasks

RebyteError = _errors.RebyteError
InputError = _errors.InputError
ConfigurationError = _errors.ConfigurationError
APIError = _errors.APIError
AuthenticationError = _errors.AuthenticationError
NotFoundError = _errors.NotFoundError
ValidationError = _errors.ValidationError
RateLimitError = _errors.RateLimitError
ServerError = _errors.ServerError
UploadError = _errors.UploadError
MalformedResponseError = _errors.MalformedResponseError
APIConnectionError = _errors.APIConnectionError
APITimeoutError = _errors.APITimeoutError
OutcomeUnknownError = _errors.OutcomeUnknownError
WaitTimeoutError = _errors.WaitTimeoutError
ProvisionError = _errors.ProvisionError
ArtifactsRefusedError = _errors.ArtifactsRefusedError
WorkspaceUnknownError = _errors.WorkspaceUnknownError

normalize_github_repo = _checks.normalize_github_repo
check_prompt = _checks.check_prompt
check_id = _checks.check_id
check_task_id = _checks.check_task_id
check_upload_path = _checks.check_upload_path
safe_artifact_path = _checks.safe_artifact_path
is_terminal = _checks.is_terminal
task_status_of = _taskstate.task_status_of

SMALL_ARTIFACT_BYTES = _constants.SMALL_ARTIFACT_BYTES
DEFAULT_BASE_URL = _constants.DEFAULT_BASE_URL
API_KEY_URL = _constants.API_KEY_URL
API_KEY_ENV = _constants.API_KEY_ENV
WEBHOOK_EVENTS = _constants.WEBHOOK_EVENTS
COMPUTER_STATUSES = _constants.COMPUTER_STATUSES
__version__ = _constants.__version__
MAX_ID_CHARS = _constants.MAX_ID_CHARS
MAX_PAGE_SIZE = _constants.MAX_PAGE_SIZE
LIST_SLACK = _constants.LIST_SLACK
FINAL_POLL_GRACE = _constants.FINAL_POLL_GRACE
UPLOAD_CHUNK_BYTES = _constants.UPLOAD_CHUNK_BYTES
MAX_PROMPT_CHARS = _constants.MAX_PROMPT_CHARS
