"""A local Rebyte-compatible v1 API server for tests, demos and benchmarks.

What stripe-mock is to Stripe: the client is driven over real HTTP sockets against a
server that follows ../shared/api-contract.md and tests/server-shapes.md. Standard library
only, Python 3.9+, and no code shared with scripts/, so a mistake cannot hide on both sides.

Two listeners, both HTTP/1.1 with keep-alive:
  api     http://127.0.0.1:PORT/v1   the REST API; API_KEY (or api-key, x-api-key) checked
  upload  http://127.0.0.2:PORT2     the storage host: signed uploadUrls (files and artifacts)
                                     and signed artifact download URLs point here; it needs
                                     no key, and logs request headers like the API does

    with FakeRebyte("rbk_test_key", prompt_duration=0.3) as server:
        requests.get(server.base_url + "/tasks", headers={"API_KEY": "rbk_test_key"})

Command line: python3 tests/fake_rebyte.py --port 0 --key KEY [options; see --help]
prints the base URL (ending in /v1) as the first line on stdout, the upload base URL on
stderr, and serves until SIGINT or SIGTERM. `--plant-artifact WORKSPACE/NAME:SIZE` (repeatable)
plants a generated artifact first, as add_artifact(WORKSPACE, NAME, size=SIZE) does.

Shapes by default are exactly the documented ones (../shared/api-contract.md): the task
view is {id, url, status, title, executor, model, createdAt, completedAt, prompts: [{id,
status, submittedAt, completedAt}], finalResult} (no workspaceId, no visibility), a list row
is {id, url, title, executor, model, createdAt, completedAt} (no status, no workspaceId),
the create answer {id, workspaceId, url, status: "running", createdAt}, and `done` on the
events stream carries the PROMPT's status word (succeeded, failed, canceled), as the real
service sends. Anything more is behind a knob that is off by default (see Knobs).

Marker words in a prompt (case-sensitive, anywhere in the text):
  [fail]            the prompt fails; its result event carries {"isError": true, "error": ...}
  [ask]             an ask_user_question event ({"question": ...}) comes before the result
  [duration=SECS]   the prompt runs SECS seconds instead of prompt_duration
  [silent]          a prompt the service answers itself: it takes no time (unless a
                    [duration=] says otherwise) and has NO data events at all; every events
                    connection gets only {"status": "succeeded" (the prompt's word),
                    "lastSeq": -1, "finalResult": ""} once it has ended; the task's
                    finalResult is "", the /content response is null, and it leaves no
                    artifacts (the answer is available nowhere through the API)

Marker in an Agent Computer's name:
  [provision-error] the computer ends in `error` (not `ready`) with a provisionError text

A prompt of duration D is pending for the first 10% of D, running until D, then succeeded
(or failed). Its events (init, thinking, tool_use, tool_result, text, [ask_user_question])
are spread over the running part and the result event comes at D. Everything is computed
lazily from the clock: nothing runs in the background. The finalResult of a succeeded
prompt is final_result_for(prompt) = "Result for: " + its first 60 characters (markers
removed, whitespace collapsed). A follow-up runs on its own clock from when it is sent,
even if an earlier prompt is still running; cancel cancels every unfinished prompt.

Agent Computers are `provisioning` for computer_ready_delay seconds after their create,
then `ready` (sandboxId set) or `error`; also lazily, from the clock. A task created with a
computer's id as workspaceId skips provision_delay; a computer not ready is 400.
When a prompt succeeds its workspace gets report-<n>.md (text naming the prompt) and
output-<n>.bin (artifact_bytes deterministic bytes), n the prompt's 1-based number in its
task; they appear at the first artifact request after the prompt's end (a later prompt
with the same n in another task of the same computer replaces them).

The server plays the agent (fakerebyte/agent.py): when a prompt succeeds and it, or an
earlier prompt of its task, was given a file whose name ends in `.bundle` (a git bundle,
as scripts/rebyte/localrepo.py uploads), tests/fake_agent.py's run_agent() runs on the
latest such bundle with the prompt's text, its markers ([edit] [add] [delete] [binary]
[rename] [conflict] [no-patch] [hostile] [symlink]) saying what it changes. A patch it
returns becomes the workspace artifact rebyte-change.patch (text/x-diff), replacing an
earlier one; [no-patch] (None) leaves the workspace as it was. All prompts of a task work
in one clone (per task and bundle), so a follow-up's patch is again the task's whole
change against the snapshot. It runs lazily, at the first artifact request after the
prompt's end (the report and output of that prompt appear in the same answer as its
patch), one run at a time, in prompt order, outside the state lock; a run over
agent_timeout seconds is abandoned (and the task's later prompts get no agent). A failure
(the agent raised, timed out, or the bundle is gone) leaves no patch and the prompt
succeeded: a line on stderr and the run's agent_log entry say why. Uploads named *.bundle
are always kept (streamed to the server's temporary folder, with upload_dir or not) and
deleted, with the agent's clones, at stop().

Choices where the documents are silent:
  - an unknown workspaceId on POST /v1/tasks is 400 validation_error (naming the field);
  - a JSON body over 1 MiB is 413 payload_too_large; a body that is not sent as
    application/json is 400 validation_error;
  - the early, empty done (events_early_done) comes while the prompt is pending, so it
    says "pending" ("running" with done_status_words="task"), lastSeq -1, finalResult null;
  - with final_result_delay, the done message carries finalResult as it stands when done is
    sent (null within the delay); with empty_final_result it carries "";
  - unread request bodies up to 16 MiB are read and dropped before an error answer, larger
    ones are answered and the connection is closed (the client may see a reset);
  - seeded tasks do not count in tasks_created; a deleted task's workspace stays reusable;
  - cancel (POST /v1/tasks/:id/cancel, undocumented answer): 200 {"id", "status"}, the
    task's status after the cancel (knob cancel_answer for the other shapes);
  - executor and model are echoed as the create asked (knobs service_executor/model);
  - computers: DELETE answers 204; a deleted computer is 404 and its id no longer a
    workspace; updatedAt is the moment the status last changed;
  - artifact list: 200 {"data": [{"filename", "size", "contentType", "updatedAt"}]}, sorted
    by name (knobs change the wrapper and the name field); an unknown workspace is 404;
  - artifact download: 200 with the bytes (Content-Length, Content-Type), or 302 to a signed
    URL on the storage listener (GET /artifacts/<ws>/<name>?expires=&signature=); the name
    is ONE percent-encoded path segment (%2F for nested names);
  - artifact upload: multipart/form-data, parts named "file" (others ignored), filename from
    the part, at most 8 MiB per request (413 payload_too_large); 201 {"data": [entries]};
    an existing name is replaced. upload-url: {filename, contentType?} -> 201 {uploadUrl,
    filename, expiresAt}; a PUT to uploadUrl with Content-Length (and the signed
    Content-Type, if one was given) makes the artifact, streamed to a temporary folder;
  - webhooks: the same url again makes a second webhook (201, counted against the limit),
    as one of Rebyte's apps reports (knob webhook_dedupe: 200 with the existing one); a 4th
    is 400 limit_exceeded; events are checked against the five names;
    GET /v1/webhooks/public_key is {"publicKey": PEM of an Ed25519 key, "algorithm":
    "ed25519"} (nothing is delivered or signed: the server makes no outbound requests).

Knobs (constructor keywords, configure(**knobs) at run time, and command-line options of the
same name, e.g. --task-read-lag 2, --no-events-route, --cancel-answer 204):
  provision_delay      seconds POST /v1/tasks blocks (not when reusing a workspaceId)
  prompt_duration      seconds a prompt takes, unless its [duration=] marker says otherwise
  seed, fault_rate, fault_kinds, fault_routes, fault_after
                       random faults: a request whose (method, path) matches fault_routes
                       (None: all) gets, with probability fault_rate, a fault drawn from
                       fault_kinds by random.Random(seed): same seed and requests, same faults;
                       fault_after=True answers it after processing the request
  retry_after          Retry-After value sent with 429
  upload_url_ttl       seconds an uploadUrl stays valid (403 ExpiredToken after)
  seed_tasks           N completed tasks made at construction (for paging and benchmarks)
  events_early_done    the first events connection of a prompt, made before its first event,
                       gets an empty done {"status": "pending", "lastSeq": -1} (the race)
  events_drop_after, events_drops, events_drop_mode
                       the first events_drops connections of a prompt are cut after
                       events_drop_after data events, by a reset ("reset") or a plain close
                       without done ("eof")
  keepalive_interval   seconds between ": keep-alive" comments on a quiet events stream
  upload_dir           where uploaded bodies are written (as the returned filename); None:
                       counted and dropped (but *.bundle ones are kept for the agent, see
                       above). Bodies are streamed, never held in memory.
  agent_timeout        seconds one run of the simulated agent may take (default 30)
  computer_ready_delay seconds a new Agent Computer provisions (default 0.5)
  artifact_bytes       size of each output-<n>.bin (default 65536; kept as the attribute
                       artifact_bytes_knob, since artifact_bytes() is a test helper)
  artifacts_wrapper    "data" (default), "artifacts" or "bare" (a JSON list)
  artifact_name_field  "filename" (default) or "name"
  artifact_download    "direct" (default: 200 with the bytes) or "redirect" (302 to storage)
  webhooks_wrapper     "data" (default) or "webhooks"
 Extras beyond the documented shapes (all off by default):
  task_view_extras     False; True: the task view carries workspaceId and visibility, and
                       list rows workspaceId (the shapes before issue 18)
  list_status          False; True: list rows carry status too
  done_status_words    "prompt" (default: succeeded/failed/canceled, as the real service) or
                       "task" (completed/failed/canceled)
  unknown_field        False; True: every JSON object answered (nested ones, SSE data and
                       error bodies too) gains "x_unknown": 1, for clients to ignore
 Habits of the real service (each off by default unless noted):
  task_read_lag        0.0 seconds; > 0: after a prompt ends, GET /v1/tasks/:id, its list
                       row and /content show it running (completedAt and finalResult null,
                       response null) this long, while /events already sends done
  events_route         True; False: GET /v1/tasks/:id/events is 404 not_found for a task
                       GET /v1/tasks/:id still shows
  final_result_delay   0.0 seconds; > 0: a succeeded prompt's finalResult (task view, done)
                       and /content response stay null this long after its status is terminal
  empty_final_result   False; True: a succeeded prompt's finalResult is "" in the task view
                       and in done, while /content's response has the real answer
  content_prompt_ids   True; False: /content prompt entries carry no id (match by position)
  service_executor, service_model
                       None; a name: tasks created while set run with it (the task view, list
                       rows and init event show it) whatever the create asked
  submitted_equals_completed
                       False; True: prompt rows (task view, /content) carry completedAt equal
                       to submittedAt from the start, even while running
  webhook_dedupe       False (default: the same url again makes a second webhook, 201);
                       True: the same url again is 200 with the existing webhook
 Alternative shapes of answers the documents leave out (first value the default):
  cancel_answer        "status" ({id, status}), "empty" (200 {}), "ok" ({"ok": true}) or
                       "204" (no body)
  artifact_upload_wrapper
                       "data" ({"data": [entries]}), "artifacts" or "bare" (a JSON list)
  upload_url_field     "uploadUrl" or "url": the URL's key in the artifact upload-url answer
  public_key_field     "publicKey" or "key": the PEM's key in GET /v1/webhooks/public_key
  log_sink             called with each request-log entry once it is answered (for --log)
  key                  the API key; host, port, upload_host, upload_port only before start()

Faults (inject() scripts them; FAULT_KINDS lists them): "429" (with Retry-After), "500",
"502", "503" (JSON error bodies), "502-html", "503-html" (a proxy's HTML page), "reset"
(SO_LINGER 0: the client sees a connection reset), "stall" (read, never answered until
stop() or the client goes away), "empty-200", "html-200", "truncated-json" (2xx whose JSON
is cut), "short-body" (Content-Length promises more than is sent, then close),
"wrong-shape" (2xx with a JSON list), "204" (no body), "403-expired" (GCS-style XML).
On an artifact download (API or storage listener), "short-body" sends the headers of
the whole artifact and half its bytes, then closes: a download interrupted half-way.
The 2xx of "truncated-json", "wrong-shape" and "short-body" is the route's own (201 for
creates). Faults come before authentication, like a proxy's. On /events and artifact
downloads, after=True acts as after=False (a stream cannot be replaced once sent).

For tests: request_log (every request on both listeners, with "request_id" of the answer
besides the documented keys), requests(method, path_regex, listener), clear_log(),
tasks_created, prompts_created, file_info(file_id), held(), clear_faults(), final_result_for(),
add_artifact(workspace_id, name, data=None, size=None) (any name; size alone: generated
bytes), artifact_bytes(workspace_id, name), artifact_sha256(workspace_id, name) (constant
memory), artifact_names(workspace_id), webhook_secret(webhook_id), agent_log (one entry per
run of the simulated agent: taskId, promptId, prompt (its number), workspaceId, patchBytes
or None, error or None), generated_chunks(seed,
size) (the generated bytes; an artifact's seed is "<workspace_id>/<name>").

Layout: this file is the face (what tests import, and the command line); the server is
the package tests/fakerebyte/, one module per concern:
  base.py       constants, Reply, errors, the parsed request, small pure helpers
  routes.py     THE routing table of the API listener (path, method -> handler), dispatch,
                the API key check, and the storage listener's routing
  core.py       FakeRebyte: the shared state, lock, clock, knobs, request log, start/stop;
                it is assembled from one mixin per resource:
  tasks.py      tasks and prompts (the clock model), their routes and JSON shapes
  events.py     the events stream as server-sent events (a mixin of the HTTP handler)
  files.py      POST /v1/files and the storage listener's signed PUTs
  artifacts.py  workspace artifacts: routes, test helpers, multipart parsing
  computers.py  Agent Computers
  webhooks.py   webhooks
  agent.py      the simulated agent's runs on an attached git bundle (tests/fake_agent.py)
  faults.py     injected faults: kinds, rules, canned answers
  knobs.py      the knob names and the checks of their values
  http.py       the listeners and the request handler: connections, bodies, replies
  cli.py        the command line
"""

from __future__ import annotations

import sys

from fakerebyte.base import (
    API_KEY_HEADERS,
    APP_URL,
    CHUNK,
    DEFAULT_KEY,
    MAX_ARTIFACT_FORM,
    MAX_DRAIN,
    MAX_FILENAME_CHARS,
    MAX_JSON_BODY,
    PATTERN_BYTES,
    UNKNOWN_FIELD,
    Reply,
    final_result_for,
    generated_chunks,
)
from fakerebyte.cli import _CLI_SHAPE_KNOBS, _parse_args, main
from fakerebyte.computers import (
    DEFAULT_COMPUTER_NAME,
    MAX_COMPUTER_ICON,
    MAX_COMPUTER_NAME,
    PROVISION_ERROR_MARKER,
)
from fakerebyte.core import FakeRebyte
from fakerebyte.faults import DEFAULT_RANDOM_FAULTS, FAULT_KINDS
from fakerebyte.tasks import (
    DEFAULT_EXECUTOR,
    DEFAULT_MODEL,
    EXECUTORS,
    MAX_PROMPT_CHARS,
    PENDING_FRACTION,
    TASK_STATUS_OF_PROMPT,
    TERMINAL,
    VISIBILITIES,
)
from fakerebyte.webhooks import MAX_WEBHOOK_TEXT, MAX_WEBHOOK_URL, MAX_WEBHOOKS, WEBHOOK_EVENTS

__all__ = [
    "API_KEY_HEADERS",
    "APP_URL",
    "CHUNK",
    "DEFAULT_COMPUTER_NAME",
    "DEFAULT_EXECUTOR",
    "DEFAULT_KEY",
    "DEFAULT_MODEL",
    "DEFAULT_RANDOM_FAULTS",
    "EXECUTORS",
    "FAULT_KINDS",
    "MAX_ARTIFACT_FORM",
    "MAX_COMPUTER_ICON",
    "MAX_COMPUTER_NAME",
    "MAX_DRAIN",
    "MAX_FILENAME_CHARS",
    "MAX_JSON_BODY",
    "MAX_PROMPT_CHARS",
    "MAX_WEBHOOKS",
    "MAX_WEBHOOK_TEXT",
    "MAX_WEBHOOK_URL",
    "PATTERN_BYTES",
    "PENDING_FRACTION",
    "PROVISION_ERROR_MARKER",
    "TASK_STATUS_OF_PROMPT",
    "TERMINAL",
    "UNKNOWN_FIELD",
    "VISIBILITIES",
    "WEBHOOK_EVENTS",
    "FakeRebyte",
    "Reply",
    "_CLI_SHAPE_KNOBS",
    "_parse_args",
    "final_result_for",
    "generated_chunks",
    "main",
]

if __name__ == "__main__":
    sys.exit(main())
