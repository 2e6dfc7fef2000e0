"""The client's webhook verbs against the local server, over real sockets.

Lifecycle, both list wrappers, the limit of 3, local checks (nothing sent), the
retry rules (add is once-only), and a secret that shows up in no error, repr or
log line, even when a server echoes it back.
"""

from __future__ import annotations

import json
import logging
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from openapi_check import template_of, validate_request

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))

from rebyte_client import (  # noqa: E402
    WEBHOOK_EVENTS,
    InputError,
    MalformedResponseError,
    NotFoundError,
    OutcomeUnknownError,
    RebyteClient,
    ValidationError,
)

SECRET = "whsec_Zq8-never-shown-4f1c"
HOOK = "https://example.com/hooks/rebyte"
WEBHOOK_ROUTES = {
    ("POST", "/webhooks"),
    ("GET", "/webhooks"),
    ("GET", "/webhooks/{id}"),
    ("DELETE", "/webhooks/{id}"),
    ("GET", "/webhooks/public_key"),
}


@pytest.fixture
def server(make_fake_rebyte):
    return make_fake_rebyte(retry_after="0")


def hook_requests(server, method=None) -> list:
    return server.requests(method, r"/v1/webhooks(/.*)?")


@pytest.mark.parametrize("wrapper", ["data", "webhooks"])
def test_lifecycle(make_fake_rebyte, client_for, wrapper):
    server = make_fake_rebyte(webhooks_wrapper=wrapper)
    client = client_for(server)
    hook = client.webhooks.create(
        HOOK, ["task.completed", "task.failed"], description="CI", secret=SECRET
    )
    assert hook["hasSecret"] is True and "secret" not in hook
    assert hook["events"] == ["task.completed", "task.failed"]
    assert server.webhook_secret(hook["id"]) == SECRET
    assert client.webhooks.create(HOOK, ["task.created"])["id"] == hook["id"]  # same URL: same one
    assert [h["id"] for h in client.webhooks.list()] == [hook["id"]]
    assert client.webhooks.get(hook["id"])["url"] == HOOK
    key = client.webhooks.public_key()
    assert key["publicKey"].startswith("-----BEGIN PUBLIC KEY-----")
    client.webhooks.delete(hook["id"])
    assert client.webhooks.list() == []
    with pytest.raises(NotFoundError) as caught:
        client.webhooks.get(hook["id"])
    assert caught.value.resource == "webhook"
    covered = set()
    for entry in hook_requests(server):
        validate_request(entry["method"], entry["path"], entry["json"], entry["query"])
        covered.add((entry["method"], template_of(entry["path"])))
    assert covered == WEBHOOK_ROUTES


def test_the_fourth_webhook_is_refused_by_the_limit(server, client_for):
    client = client_for(server)
    for n in range(3):
        client.webhooks.create(f"{HOOK}/{n}", ["task.completed"])
    with pytest.raises(ValidationError) as caught:
        client.webhooks.create(f"{HOOK}/4", ["task.completed"])
    assert caught.value.code == "limit_exceeded" and "at most 3" in str(caught.value)
    assert len(client.webhooks.list()) == 3


@pytest.mark.parametrize(
    "url, events, options",
    [
        ("http://example.com/hook", ["task.completed"], {}),
        ("http://127.0.0.1/hook", ["task.completed"], {}),
        ("ftp://example.com/hook", ["task.completed"], {}),
        ("https:///no-host", ["task.completed"], {}),
        ("https://example.com/a hook", ["task.completed"], {}),
        ("example.com/hook", ["task.completed"], {}),
        ("", ["task.completed"], {}),
        (HOOK, [], {}),
        (HOOK, "task.completed", {}),
        (HOOK, None, {}),
        (HOOK, 3, {}),
        (HOOK, ["task.done"], {}),
        (HOOK, ["task.completed"], {"description": "d" * 501}),
        (HOOK, ["task.completed"], {"secret": SECRET * 30}),
        (HOOK, ["task.completed"], {"secret": ""}),
    ],
)
def test_bad_input_is_refused_with_nothing_sent(server, client_for, url, events, options):
    client = client_for(server)
    with pytest.raises(InputError) as caught:
        client.webhooks.create(url, events, **options)
    assert SECRET not in str(caught.value)
    assert hook_requests(server) == []


def test_every_known_event_is_accepted(server, client_for):
    hook = client_for(server).webhooks.create(HOOK, list(WEBHOOK_EVENTS))
    assert hook["events"] == list(WEBHOOK_EVENTS)


# ----------------------------------------------------------------------------- retries


def test_add_is_retried_after_429_and_made_once(server, client_for):
    client = client_for(server)
    server.inject("POST", "/v1/webhooks", "429")
    client.webhooks.create(HOOK, ["task.completed"], secret=SECRET)
    assert [e["status"] for e in hook_requests(server, "POST")] == [429, 201]


@pytest.mark.parametrize("fault", ["500", "reset", "truncated-json"])
def test_an_add_whose_outcome_is_unknown_is_sent_once(server, client_for, fault):
    client = client_for(server)
    server.inject("POST", "/v1/webhooks", fault, after=True)
    with pytest.raises(OutcomeUnknownError) as caught:
        client.webhooks.create(HOOK, ["task.completed"], secret=SECRET)
    assert caught.value.operation == "add_webhook" and "webhooks.list()" in caught.value.hint
    assert len(hook_requests(server, "POST")) == 1
    assert SECRET not in str(caught.value) and SECRET not in repr(caught.value)


@pytest.mark.parametrize("method", ["GET", "DELETE"])
def test_get_and_delete_are_retried(server, client_for, method):
    client = client_for(server)
    hook = client.webhooks.create(HOOK, ["task.completed"])
    server.inject(method, r"/v1/webhooks/[^/]+", "503")
    (client.webhooks.get if method == "GET" else client.webhooks.delete)(hook["id"])
    one_hook = server.requests(method, r"/v1/webhooks/[^/]+")
    assert [e["status"] for e in one_hook] == [503, 200 if method == "GET" else 204]


def test_a_delete_whose_first_answer_was_lost_counts_as_done(server, client_for):
    client = client_for(server)
    hook = client.webhooks.create(HOOK, ["task.completed"])
    server.inject("DELETE", r"/v1/webhooks/[^/]+", "502", after=True)
    assert client.webhooks.delete(hook["id"]) is None
    assert [e["status"] for e in hook_requests(server, "DELETE")] == [502, 404]


# ------------------------------------------------------------------------ the secret


class _Echo(BaseHTTPRequestHandler):
    """Answers every POST with an error quoting the request body, secret included."""

    status = 400

    def do_POST(self) -> None:  # noqa: N802 - http.server's name
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0)).decode()
        payload = json.dumps({"error": {"code": "validation_error", "message": f"bad: {body}"}})
        data = payload.encode()
        self.send_response(self.server.status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args) -> None:
        pass


@pytest.mark.parametrize("status", [400, 422, 500, 503])
def test_a_secret_echoed_by_the_server_is_in_no_error_repr_or_log(api_key, caplog, status):
    echo = ThreadingHTTPServer(("127.0.0.1", 0), _Echo)
    echo.status = status
    threading.Thread(target=echo.serve_forever, daemon=True).start()
    try:
        client = RebyteClient(
            api_key, base_url=f"http://127.0.0.1:{echo.server_port}/v1", max_retries=0
        )
        caplog.set_level(logging.DEBUG)
        with pytest.raises(Exception) as caught:  # the echo lists nothing: straight to the POST
            client.webhooks.create(HOOK, ["task.completed"], secret=SECRET, allow_duplicate=True)
        client.close()
    finally:
        echo.shutdown()
        echo.server_close()
    error = caught.value
    assert "bad:" in str(error)  # the echo did come back, blanked
    chain, current = [], error
    while current is not None and current not in chain:
        chain.append(current)
        current = current.__cause__ or current.__context__
    for item in chain:
        shown = [str(item), repr(item), repr(item.args)]
        shown += [str(getattr(item, name, "")) for name in ("message", "hint")]
        assert not any(SECRET in text for text in shown), shown
    assert SECRET not in caplog.text
    assert SECRET not in repr(client)


class _Canned(BaseHTTPRequestHandler):
    """Answers every GET with the server's `body` (a JSON value)."""

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        data = json.dumps(self.server.body).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args) -> None:
        pass


@pytest.mark.parametrize(
    "body, listed",
    [
        ([{"id": "w1"}], ["w1"]),
        ({"data": [{"id": "w1"}, {"id": "w2"}]}, ["w1", "w2"]),
        ({"webhooks": [{"id": "w2"}]}, ["w2"]),
        ({"items": [{"id": "w1"}]}, None),
        ({"data": "w1"}, None),
        ([["w1"]], None),
    ],
)
def test_the_list_is_read_from_any_wrapper_the_contract_names(api_key, body, listed):
    canned = ThreadingHTTPServer(("127.0.0.1", 0), _Canned)
    canned.body = body
    threading.Thread(target=canned.serve_forever, daemon=True).start()
    try:
        client = RebyteClient(api_key, base_url=f"http://127.0.0.1:{canned.server_port}/v1")
        if listed is None:
            with pytest.raises(MalformedResponseError):
                client.webhooks.list()
        else:
            assert [hook["id"] for hook in client.webhooks.list()] == listed
        client.close()
    finally:
        canned.shutdown()
        canned.server_close()
