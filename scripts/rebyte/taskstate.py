"""Reading a task view: whether it (or one prompt) ended, its answer, its progress."""

from __future__ import annotations

from typing import (
    Any,
    List,
    Optional,
    Tuple,
)

from .constants import PROMPT_TERMINAL_STATUSES, TASK_TERMINAL_STATUSES


def _progress_state(task: dict) -> tuple:
    prompts = task.get("prompts") if isinstance(task.get("prompts"), list) else []
    return (
        task.get("status"),
        tuple((p.get("id"), p.get("status")) for p in prompts if isinstance(p, dict)),
    )


def _done_from_task(task: dict, prompt_id: Optional[str], done: dict) -> dict:
    """The `done` item of a prompt that the task view shows ended."""
    prompts = [p for p in task.get("prompts") or [] if isinstance(p, dict)]
    latest = prompts[-1] if prompts else {}
    if prompt_id is None or latest.get("id") == prompt_id:
        status, result = task.get("status"), task.get("finalResult")
        if not result and isinstance(done.get("finalResult"), str):
            result = done["finalResult"]
    else:
        mine = next(p for p in prompts if p.get("id") == prompt_id)
        status, result = task_status_of(mine.get("status")), None
    return {
        **done,
        "eventType": "done",
        "status": status,
        "finalResult": result,
        "promptId": prompt_id or latest.get("id"),
    }


def _ended_word(status: Any) -> bool:
    """A terminal status in the task vocabulary or the prompt one (`done` may use either)."""
    return status in TASK_TERMINAL_STATUSES or status in PROMPT_TERMINAL_STATUSES


def task_status_of(status: Any) -> Any:
    """A status in the task vocabulary: a prompt's `succeeded` is a task's `completed`."""
    return "completed" if status == "succeeded" else status


def _is_done(task: dict, prompt_id: Optional[str]) -> bool:
    if prompt_id is None:
        return task.get("status") in TASK_TERMINAL_STATUSES
    for prompt in task.get("prompts") or []:
        if isinstance(prompt, dict) and prompt.get("id") == prompt_id:
            return prompt.get("status") in PROMPT_TERMINAL_STATUSES
    return False


def _prompt_ids(task: dict) -> List[Optional[str]]:
    prompts = task.get("prompts") if isinstance(task.get("prompts"), list) else []
    return [p.get("id") if isinstance(p, dict) else None for p in prompts]


def _prompt_status(task: dict, prompt_id: Optional[str]) -> Optional[str]:
    """The status of that prompt (the latest when None), in the prompt vocabulary."""
    prompts = [p for p in task.get("prompts") or [] if isinstance(p, dict)]
    if prompt_id is not None:
        prompts = [p for p in prompts if p.get("id") == prompt_id]
    if prompts:
        return prompts[-1].get("status")
    return {"completed": "succeeded"}.get(task.get("status"), task.get("status"))


def _answer_in_view(task: dict, prompt_id: Optional[str]) -> Tuple[Optional[str], bool]:
    """(the task view's non-empty finalResult, whether it answers that prompt): the view's
    answer is the latest prompt's, so it says nothing of an earlier one."""
    ids = _prompt_ids(task)
    latest = prompt_id is None or (bool(ids) and ids[-1] == prompt_id)
    final = task.get("finalResult")
    return (final if latest and isinstance(final, str) and final else None), latest


def _matching_entry(
    entries: List[dict], prompt_ids: List[Optional[str]], prompt_id: Optional[str]
) -> Optional[dict]:
    """The /content entry of that prompt (the latest when None): by id where the entries
    carry ids, else by the prompt's position among the task's prompts."""
    if not entries:
        return None
    if prompt_id is None:
        return entries[-1]
    by_id = [entry for entry in entries if entry.get("id") == prompt_id]
    if by_id:
        return by_id[-1]
    if any(entry.get("id") for entry in entries) or prompt_id not in prompt_ids:
        return None
    position = prompt_ids.index(prompt_id)
    return entries[position] if position < len(entries) else None
