"""The client's Agent Computer verbs against the local server, over real sockets.

Lifecycle (create, get, list, iter, wait, a task in it, delete), a computer that
ends in `error`, a wait that runs out, and the retry rules: reads and deletes are
retried, a create only where the server certainly did nothing.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import pytest
from openapi_check import template_of, validate_request

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))

from rebyte_client import (  # noqa: E402
    InputError,
    NotFoundError,
    OutcomeUnknownError,
    ProvisionError,
    RateLimitError,
    WaitTimeoutError,
)

COMPUTER_ROUTES = {
    ("POST", "/agent-computers"),
    ("GET", "/agent-computers"),
    ("GET", "/agent-computers/{id}"),
    ("DELETE", "/agent-computers/{id}"),
}


@pytest.fixture
def server(make_fake_rebyte):
    return make_fake_rebyte(prompt_duration=0.2, computer_ready_delay=0.3, retry_after="0")


def computer_requests(server, method=None) -> list:
    return server.requests(method, r"/v1/agent-computers(/.*)?")


def test_lifecycle_and_a_task_in_the_computer(server, client_for):
    client = client_for(server)
    created = client.computers.create(name="build box", icon="laptop")
    assert created["status"] == "provisioning" and created["name"] == "build box"
    assert client.computers.get(created["id"])["id"] == created["id"]
    statuses = []
    ready = client.computers.wait(
        created["id"], poll_interval=0.05, on_status=lambda c: statuses.append(c["status"])
    )
    assert ready["status"] == "ready" and ready["sandboxId"]
    assert statuses == ["provisioning", "ready"]
    other = client.computers.create()
    page = client.computers.list(limit=1)
    assert [c["id"] for c in page["data"]] == [other["id"]] and page["total"] == 2
    assert [c["id"] for c in client.computers.iter(page_size=1)] == [other["id"], created["id"]]
    task = client.tasks.create("Run the tests [duration=0.1]", workspace_id=created["id"])
    assert task["workspaceId"] == created["id"]
    assert client.tasks.wait(task["id"], poll_interval=0.05)["status"] == "completed"
    client.computers.delete(created["id"])
    with pytest.raises(NotFoundError) as caught:
        client.computers.get(created["id"])
    assert caught.value.resource == "computer"
    covered = set()
    for entry in computer_requests(server):
        validate_request(entry["method"], entry["path"], entry["json"], entry["query"])
        covered.add((entry["method"], template_of(entry["path"])))
    assert covered == COMPUTER_ROUTES


def test_a_computer_that_ends_in_error_raises_provision_error(server, client_for):
    client = client_for(server)
    created = client.computers.create(name="broken [provision-error]")
    with pytest.raises(ProvisionError) as caught:
        client.computers.wait(created["id"], poll_interval=0.05)
    error = caught.value
    assert error.computer["id"] == created["id"] and error.computer["status"] == "error"
    assert error.provision_error and error.provision_error.rstrip(". ") in str(error)


def test_a_wait_that_runs_out_says_which_computer(server, client_for):
    server.configure(computer_ready_delay=30)
    client = client_for(server)
    created = client.computers.create()
    started = time.monotonic()
    with pytest.raises(WaitTimeoutError) as caught:
        client.computers.wait(created["id"], timeout=0.4, poll_interval=0.05)
    assert time.monotonic() - started < 3
    error = caught.value
    assert (error.resource, error.resource_id) == ("computer", created["id"])
    assert "provisioning" in str(error) and error.task_id is None


def test_bad_arguments_are_refused_before_sending(server, client_for):
    client = client_for(server)
    for call in (
        lambda: client.computers.create(name="n" * 201),
        lambda: client.computers.create(icon="i" * 51),
        lambda: client.computers.create(name="  "),
        lambda: client.computers.get(".."),
        lambda: client.computers.delete("a b"),
        lambda: client.computers.list(limit=101),
        lambda: client.computers.wait("c1", timeout=0),
    ):
        with pytest.raises(InputError):
            call()
    assert computer_requests(server) == []


# ----------------------------------------------------------------------------- retries

# name -> (call, method, path regex)
IDEMPOTENT = {
    "get_computer": (lambda c, cid: c.computers.get(cid), "GET", r"/v1/agent-computers/[^/]+"),
    "list_computers": (lambda c, cid: c.computers.list(), "GET", r"/v1/agent-computers"),
    "delete_computer": (
        lambda c, cid: c.computers.delete(cid),
        "DELETE",
        r"/v1/agent-computers/[^/]+",
    ),
}


@pytest.mark.parametrize("fault", ["503", "502-html", "reset", "429"])
@pytest.mark.parametrize("name", sorted(IDEMPOTENT))
def test_reads_and_deletes_are_retried(server, client_for, name, fault):
    client = client_for(server)
    computer_id = client.computers.create()["id"]
    call, method, path = IDEMPOTENT[name]
    server.inject(method, path, fault)
    call(client, computer_id)
    assert len(computer_requests(server, method)) == 2


def test_a_delete_whose_first_answer_was_lost_counts_as_done(server, client_for):
    client = client_for(server)
    computer_id = client.computers.create()["id"]
    server.inject("DELETE", r"/v1/agent-computers/[^/]+", "500", after=True)
    assert client.computers.delete(computer_id) is None
    assert [e["status"] for e in computer_requests(server, "DELETE")] == [500, 404]
    with pytest.raises(NotFoundError):
        client.computers.delete(computer_id)  # not retried: a first 404 is an error


def test_a_create_is_retried_after_429_and_made_once(server, client_for):
    client = client_for(server)
    server.inject("POST", "/v1/agent-computers", "429", count=2)
    client.computers.create(name="once")
    assert len(computer_requests(server, "POST")) == 3
    assert len(client.computers.list()["data"]) == 1


def test_a_create_that_keeps_meeting_429_gives_up(server, client_for):
    client = client_for(server, max_retries=1)
    server.inject("POST", "/v1/agent-computers", "429", count=5)
    with pytest.raises(RateLimitError):
        client.computers.create()
    assert len(computer_requests(server, "POST")) == 2


@pytest.mark.parametrize("fault", ["500", "503-html", "reset", "truncated-json", "wrong-shape"])
def test_a_create_whose_outcome_is_unknown_is_sent_once(server, client_for, fault):
    client = client_for(server)
    server.inject("POST", "/v1/agent-computers", fault, after=True)
    with pytest.raises(OutcomeUnknownError) as caught:
        client.computers.create(name="maybe")
    error = caught.value
    assert error.operation == "create_computer"
    assert "computers.list(limit=5)" in error.hint
    assert len(computer_requests(server, "POST")) == 1
    assert len(client.computers.list()["data"]) == 1  # it was made: hence "may have been"
