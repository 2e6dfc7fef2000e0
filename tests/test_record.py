"""The local record (scripts/rebyte/record.py): what this machine created, kept safely."""

from __future__ import annotations

import json
import multiprocessing
import os
import stat
import sys
import threading
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "scripts"))
from rebyte import record  # noqa: E402


def lines(folder: Path) -> list:
    return [json.loads(line) for line in (folder / record.RECORD_NAME).read_text().splitlines()]


def test_a_create_is_pending_until_its_answer_completes_it(local_record_in_tmp):
    fingerprint = record.prompt_fingerprint("Write the tests " * 20)
    ref = record.begin("task", "api.rebyte.ai", **fingerprint, batch="nightly")
    [pending] = record.creates()
    assert pending["state"] == "pending" and pending["batch"] == "nightly"
    record.created(ref, "task", {"id": "t1", "workspaceId": "w1", "url": "https://x/run/t1"})
    [done] = record.creates()
    assert done["state"] == "created" and done["id"] == "t1" and done["workspaceId"] == "w1"
    assert record.workspace_of("t1") == "w1" and record.workspace_of("t2") is None
    assert [line["event"] for line in lines(local_record_in_tmp)] == ["pending", "created"]


def test_a_prompt_is_kept_as_its_start_and_a_hash_only(local_record_in_tmp):
    prompt = "Refactor   the\nparser " + "x" * 500 + " SECRET-TAIL"
    record.begin("task", "h", **record.prompt_fingerprint(prompt))
    text = (local_record_in_tmp / record.RECORD_NAME).read_text()
    [entry] = lines(local_record_in_tmp)
    assert entry["prompt"] == ("Refactor the parser " + "x" * 500)[: record.PROMPT_START_CHARS]
    assert len(entry["prompt"]) == 60 and "\n" not in entry["prompt"]
    assert "SECRET-TAIL" not in text and len(entry["promptHash"]) == 64


def test_the_record_is_private_to_the_user(local_record_in_tmp):
    record.begin("task", "h", prompt="p")
    mode = stat.S_IMODE(os.stat(local_record_in_tmp / record.RECORD_NAME).st_mode)
    assert mode == 0o600
    assert stat.S_IMODE(os.stat(local_record_in_tmp).st_mode) == 0o700


def test_only_the_known_fields_of_an_answer_are_kept(local_record_in_tmp):
    """A create answer is never copied whole: a server could put anything in it."""
    answer = {"id": "t1", "url": "u", "uploadUrl": "https://s/x?signature=abc", "key": "rbk_x"}
    record.created(record.begin("task", "h"), "task", answer)
    text = (local_record_in_tmp / record.RECORD_NAME).read_text()
    assert "signature" not in text and "rbk_" not in text


def test_the_record_can_be_turned_off(local_record_in_tmp, monkeypatch):
    monkeypatch.setenv(record.RECORD_ENV, "off")
    record.begin("task", "h", prompt="p")
    assert not (local_record_in_tmp / record.RECORD_NAME).exists() and record.creates() == []


def test_past_its_limit_the_oldest_lines_go(local_record_in_tmp, monkeypatch):
    monkeypatch.setattr(record, "MAX_RECORD_BYTES", 4000)
    monkeypatch.setattr(record, "KEEP_AFTER_TRIM", 2000)
    for n in range(200):
        record.created(record.begin("task", "h"), "task", {"id": f"t{n}"})
    size = (local_record_in_tmp / record.RECORD_NAME).stat().st_size
    assert size <= 4000
    ids = [entry.get("id") for entry in record.creates()]
    assert ids[0] == "t199" and "t0" not in ids  # the newest kept, the oldest dropped
    assert all(isinstance(line, dict) for line in lines(local_record_in_tmp))  # whole lines only


def test_threads_writing_at_once_lose_and_mix_nothing(local_record_in_tmp):
    def write(n: int) -> None:
        for i in range(25):
            record.created(record.begin("task", "h", batch=f"b{n}"), "task", {"id": f"t{n}-{i}"})

    threads = [threading.Thread(target=write, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    entries = record.creates()
    assert len(entries) == 200 and all(entry["state"] == "created" for entry in entries)


def _write_from_another_process(state: str, n: int) -> None:
    os.environ["XDG_STATE_HOME"] = state
    for i in range(20):
        record.created(record.begin("task", "h"), "task", {"id": f"p{n}-{i}"})


def test_processes_writing_at_once_lose_and_mix_nothing(local_record_in_tmp):
    state = str(local_record_in_tmp.parent)
    context = multiprocessing.get_context("spawn")
    workers = [
        context.Process(target=_write_from_another_process, args=(state, n)) for n in range(3)
    ]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(30)
    entries = record.creates()
    assert len(entries) == 60 and all(entry["state"] == "created" for entry in entries)


def test_a_line_that_is_not_json_is_skipped(local_record_in_tmp):
    record.begin("task", "h", prompt="first")
    with open(local_record_in_tmp / record.RECORD_NAME, "ab") as handle:
        handle.write(b"\xff garbage\n[1, 2]\n")
    record.begin("task", "h", prompt="second")
    assert [entry["prompt"] for entry in record.creates()] == ["second", "first"]


def test_unanswered_creates_of_the_same_prompt_are_found(local_record_in_tmp):
    fingerprint = record.prompt_fingerprint("Build it")
    record.begin("task", "api.rebyte.ai", **fingerprint)
    answered = record.begin("task", "api.rebyte.ai", **fingerprint)
    record.created(answered, "task", {"id": "t1"})
    record.begin("task", "other.host", **fingerprint)
    found = record.unanswered_like("api.rebyte.ai", fingerprint["promptHash"])
    assert len(found) == 1 and found[0]["state"] == "pending"
    assert record.unanswered_like("api.rebyte.ai", fingerprint["promptHash"], within=-1) == []


def test_a_relative_xdg_state_home_is_ignored(monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_STATE_HOME", "relative/dir")
    monkeypatch.setenv("HOME", str(tmp_path))
    assert record.record_dir() == str(tmp_path / ".local" / "state" / "skill-as-a-service")


def test_an_unwritable_record_never_stops_a_create(monkeypatch, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    monkeypatch.setenv("XDG_STATE_HOME", str(blocker))  # a file where a folder should be
    assert record.append({"event": "x"}) is False
    assert record.creates() == []


@pytest.mark.parametrize("text", ["2026-12-04T10:00:00.000Z", "2026-12-04T10:00:00+00:00"])
def test_times_are_read_in_both_forms(text):
    assert record.parse_iso(text) == record.parse_iso("2026-12-04T10:00:00Z")


def test_a_bad_time_is_none():
    assert record.parse_iso("yesterday") is None and record.parse_iso(None) is None
