"""Limits, defaults and fixed values of the client, in one place."""

__version__ = "0.1.0"

DEFAULT_BASE_URL = "https://api.rebyte.ai/v1"
API_KEY_URL = "https://app.rebyte.ai/settings/api-keys"
# The environment variable the key is read from; named once, for messages and docs too.
API_KEY_ENV = "REBYTE_API_KEY"

MAX_PROMPT_CHARS = 100_000
MAX_FILENAME_CHARS = 255
MAX_ID_CHARS = 128
MAX_TASK_ID_CHARS = MAX_ID_CHARS
MAX_PAGE_SIZE = 100
# A listing stops with an error past this many items, or past the first page's total
# plus LIST_SLACK (what may be created while it runs): a server's pages may never end.
MAX_LIST_ITEMS = 100_000
LIST_SLACK = 1_000
VISIBILITIES = ("private", "shared", "public")
EXECUTORS = ("opencode", "claude", "gemini", "codex")
TASK_TERMINAL_STATUSES = frozenset({"completed", "failed", "canceled"})
PROMPT_TERMINAL_STATUSES = frozenset({"succeeded", "failed", "canceled"})
COMPUTER_STATUSES = ("provisioning", "ready", "error")
MAX_COMPUTER_NAME_CHARS = 200
MAX_COMPUTER_ICON_CHARS = 50
DEFAULT_COMPUTER_WAIT_TIMEOUT = 600.0
WEBHOOK_EVENTS = ("task.created", "task.running", "task.completed", "task.failed", "task.canceled")
MAX_WEBHOOK_TEXT_CHARS = 500
MAX_WEBHOOK_URL_CHARS = 2048

DEFAULT_CONNECT_TIMEOUT = 10.0
DEFAULT_READ_TIMEOUT = 60.0
DEFAULT_CREATE_TIMEOUT = 600.0
DEFAULT_MAX_RETRIES = 2
DEFAULT_WAIT_TIMEOUT = 3600.0
FINAL_POLL_GRACE = 2.0
# How long a succeeded prompt without its answer is read again (the answer can lag its status).
RESULT_SETTLE_SECONDS = 3.0
RESULT_SETTLE_FIRST_DELAY = 0.25
# Polling in place of an event stream that a server does not have.
POLLED_EVENTS_FIRST_DELAY = 2.0
POLLED_EVENTS_MAX_DELAY = 10.0

# Retry pacing, after the OpenAI and Anthropic SDKs: 0.5 s doubling to 8 s, with jitter.
INITIAL_RETRY_DELAY = 0.5
MAX_RETRY_DELAY = 8.0
MAX_RETRY_AFTER = 60.0

RETRYABLE_STATUSES = frozenset({408, 429, 500, 502, 503, 504})
REQUEST_ID_HEADERS = ("x-request-id", "request-id", "x-rebyte-request-id")
UPLOAD_CHUNK_BYTES = 1024 * 1024
# The largest API answer read (a task with its prompts is a few KiB; a list page, some 100).
MAX_ANSWER_BYTES = 32 * 1024 * 1024
ANSWER_CHUNK_BYTES = 64 * 1024
WATCHDOG_TICK = 0.25
# The largest server-sent event (or line of one) taken from an event stream.
MAX_EVENT_BYTES = 16 * 1024 * 1024
# Artifacts up to this size go in one multipart POST; larger ones through a signed upload URL.
SMALL_ARTIFACT_BYTES = 8 * 1024 * 1024
MULTIPART_PART_OVERHEAD = 1024  # a part's headers and boundary, generously
MAX_DOWNLOAD_REDIRECTS = 3
_REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
MAX_NAME_BYTES = 255  # of one path component, on the usual local file systems

# The longest timeout taken (30 days): beyond, a number is a mistake, and 1e300 or
# inf would overflow the clocks and timers underneath.
MAX_TIMEOUT_SECONDS = 30 * 24 * 3600.0

# Where undocumented answers may put a value, in the order looked at.
UPLOAD_URL_FIELDS = ("uploadUrl", "url", "signedUrl", "upload_url")
PUBLIC_KEY_FIELDS = ("publicKey", "key", "public_key", "pem")
