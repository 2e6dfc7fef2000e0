"""The local server plays the agent (issue 20): a task handed a git bundle gets a patch.

When a prompt of a task succeeds and that prompt, or an earlier one of the same task, was
given a file whose name ends in `.bundle`, the server runs tests/fake_agent.py's
run_agent() on the latest such bundle with the prompt's text. A patch it returns becomes
the workspace artifact rebyte-change.patch (replacing an earlier one); None (the prompt
says [no-patch]) leaves the workspace as it was. Every prompt of the task works in the
same clone folder (one per task and bundle), so a follow-up's patch is again the task's
whole change against the snapshot, as a real agent's `git diff` in /code/repo would be.

When: lazily, like report-<n>.md, at the first artifact request (or artifact test helper)
after the prompt's end; the runs of one server happen one at a time, in prompt order,
outside the state lock, and a prompt's report-<n>.md and output-<n>.bin appear in the same
answer as its patch. Bounded: a run that takes more than agent_timeout seconds (default
30) is abandoned; the task's later prompts then get no agent either. A failure (the agent
raised, timed out, or the bundle is gone) leaves no patch: the prompt still succeeded (it
was already seen so), a line goes to stderr and the entry in agent_log says why.
"""

from __future__ import annotations

import os
import shutil
import sys
import threading
import time
from dataclasses import dataclass

import fake_agent

from fakerebyte.artifacts import _Artifact

PATCH_NAME = "rebyte-change.patch"  # what scripts/rebyte/localrepo.py tells the agent to leave
PATCH_CONTENT_TYPE = "text/x-diff"


@dataclass
class _AgentJob:
    task_id: str
    workspace_id: str
    number: int  # the prompt's 1-based number in its task
    prompt: object  # the _Prompt
    bundle: str | None  # the kept bytes of the bundle (None: no longer kept)
    work_dir: str


class Agent:
    """The simulated agent's runs (a mixin of FakeRebyte)."""

    def _run_agents(self, workspace_id: str) -> None:
        """Run the agent for each prompt of the workspace that succeeded by now and has not
        had its run: one server-wide run at a time (a reader waits for it), in prompt order."""
        with self._agent_lock:
            with self._lock:
                jobs = self._agent_jobs(workspace_id, self._now())
            for job in jobs:
                patch, error = self._agent_run(job)
                with self._lock:
                    self._agent_finished(job, patch, error)

    def _agent_jobs(self, workspace_id: str, now: float) -> list:
        jobs = []
        for task in self._tasks.values():
            if task.workspace_id != workspace_id:
                continue
            for index, prompt in enumerate(task.prompts):
                if not self._agent_due(task, index, now):
                    continue
                prompt.agent_ran = True
                record = self._bundle_for(task, index)
                folder = self._kept_folder()
                work_dir = os.path.join(folder, f"agent-{task.id}-{record.id}")
                jobs.append(
                    _AgentJob(task.id, workspace_id, index + 1, prompt, record.kept, work_dir)
                )
        return jobs

    def _agent_due(self, task, index: int, now: float) -> bool:
        """A succeeded prompt of a task given a bundle, whose agent has not run yet."""
        prompt = task.prompts[index]
        return (
            not prompt.agent_ran
            and not prompt.silent
            and prompt.status(now) == "succeeded"
            and self._bundle_for(task, index) is not None
        )

    def _bundle_for(self, task, index: int):
        """The _File of the latest bundle given to prompt `index` or an earlier one."""
        for prompt in reversed(task.prompts[: index + 1]):
            for filename in reversed(prompt.filenames):
                if filename.endswith(".bundle"):
                    for record in self._files.values():
                        if record.filename == filename:
                            return record
        return None

    def _agent_run(self, job: _AgentJob) -> tuple:
        """(patch or None, error or None) of one run, in a thread given agent_timeout s."""
        if job.bundle is None:
            return None, "the bundle is no longer kept (the server was stopped)"
        if job.work_dir in self._agent_abandoned:
            return None, "skipped: an earlier run in this clone timed out"
        outcome: dict = {}

        def run() -> None:
            try:
                outcome["patch"] = fake_agent.run_agent(
                    job.bundle, job.prompt.text, work_dir=job.work_dir
                )
            except Exception as error:  # any failure of the agent: no patch, said why
                outcome["error"] = f"{type(error).__name__}: {error}"

        thread = threading.Thread(target=run, name="fake-rebyte-agent", daemon=True)
        thread.start()
        thread.join(float(self.agent_timeout))
        if thread.is_alive():
            with self._lock:
                self._agent_abandoned[job.work_dir] = thread
            return None, f"timed out after {self.agent_timeout} s"
        return outcome.get("patch"), outcome.get("error")

    def _agent_finished(self, job: _AgentJob, patch: bytes | None, error: str | None) -> None:
        self.agent_log.append(
            {
                "taskId": job.task_id,
                "promptId": job.prompt.id,
                "prompt": job.number,
                "workspaceId": job.workspace_id,
                "patchBytes": None if patch is None else len(patch),
                "error": error,
            }
        )
        if error is not None:
            print(
                f"fake-rebyte: simulated agent, task {job.task_id} prompt {job.number}: "
                f"no patch: {error}",
                file=sys.stderr,
                flush=True,
            )
        if patch is None:
            return
        files = self._artifacts.setdefault(job.workspace_id, {})
        if PATCH_NAME in files:
            files[PATCH_NAME].discard()
        files[PATCH_NAME] = _Artifact(
            PATCH_NAME, len(patch), PATCH_CONTENT_TYPE, job.prompt.ends, data=patch
        )

    def _discard_kept(self) -> None:
        """Delete the kept bundles and the agent's clones (at stop()), once the runs that
        timed out have ended (given 2 s more at most)."""
        with self._lock:
            folder, self._agent_dir = self._agent_dir, None
            for record in self._files.values():
                record.kept = None
            abandoned = list(self._agent_abandoned.values())
            self._agent_abandoned.clear()
        deadline = time.monotonic() + 2.0
        for thread in abandoned:
            thread.join(max(0.0, deadline - time.monotonic()))
        if folder is not None:
            shutil.rmtree(folder, ignore_errors=True)
