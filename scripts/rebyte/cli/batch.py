"""`batch`: many tasks created from a JSON, JSON Lines or YAML file, one JSON line each."""

from __future__ import annotations

import argparse
import json
import os

from .create import create_planned, plan_task, prompt_bytes_cap, split_skills
from .errors import UsageError, exit_code_for, explain, worst_exit
from .options import add_wait_options, command, commands, options, whole
from .output import RUN, Output, one_line, tab_line
from .roundtrip import (
    LocalRepo,
    hand_off,
    plan_with_handoff,
    remember_handoff,
    take_snapshot,
)
from .session import Run, load_client_module, make_client, read_text
from .waiting import (
    answer_or_url,
    outcome_code,
    run_concurrently,
    say_if_unavailable,
    wait_many,
    without_answer,
)

MAX_BATCH_FILE_BYTES = 16 * 1024 * 1024


def _batch_arguments(batch: argparse.ArgumentParser) -> None:
    batch.add_argument("spec_file", metavar="FILE", help="task specs (- for stdin)")
    batch.add_argument(
        "--concurrency", type=whole(1, 32), default=4, help="creates at once (default 4)"
    )
    add_wait_options(batch, flags=("wait",))


BATCH_FIELDS = {
    "prompt": "prompt",
    "prompt_file": "prompt_file",
    "promptFile": "prompt_file",
    "skills": "skills",
    "executor": "executor",
    "model": "model",
    "files": "files",
    "github_url": "github_url",
    "githubUrl": "github_url",
    "branch": "branch",
    "branch_name": "branch",
    "branchName": "branch",
    "workspace": "workspace",
    "workspace_id": "workspace",
    "workspaceId": "workspace",
    "public": "public",
    "name": "name",
    "localRepo": "local_repo",
    "local_repo": "local_repo",
    "allowSecrets": "allow_secrets",
    "allow_secrets": "allow_secrets",
}


def load_batch_specs(path: str) -> list:
    """Task specs from a JSON array, JSON Lines or YAML (when PyYAML is installed)."""
    specs = _parse_specs(read_text(path, "batch file", MAX_BATCH_FILE_BYTES), path)
    if isinstance(specs, dict):  # one object (a JSON Lines file of one line, say): one spec
        specs = [specs]
    if not isinstance(specs, list) or not specs:
        raise UsageError(f"batch file {path} holds no task specs (expected a list of objects)")
    return specs


def _parse_specs(text: str, path: str):
    stripped = text.strip()
    if not stripped:
        return []
    try:
        return json.loads(stripped)
    except ValueError:
        pass
    lines = [line for line in stripped.splitlines() if line.strip()]
    try:
        return [json.loads(line) for line in lines]
    except ValueError:
        pass
    try:
        import yaml
    except ImportError:
        raise UsageError(
            f"batch file {path} is not valid JSON or JSON Lines (YAML needs PyYAML installed)"
        ) from None
    try:
        return yaml.load(stripped, Loader=_yaml_loader_without_aliases(yaml))  # noqa: S506
    except _AliasRefused as refused:
        raise UsageError(
            f"batch file {path}: YAML aliases are not allowed (line {refused.line}); "
            "write each value out"
        ) from None
    except yaml.YAMLError as error:
        where = getattr(error, "problem_mark", None)
        at = f" at line {where.line + 1}" if where is not None else ""
        raise UsageError(f"batch file {path} is not valid JSON, JSON Lines or YAML{at}") from None


class _AliasRefused(Exception):
    def __init__(self, line: int) -> None:
        super().__init__(line)
        self.line = line


def _yaml_loader_without_aliases(yaml):
    """yaml.SafeLoader that refuses `*alias` while composing: an alias bomb of a few
    hundred bytes would otherwise stand for billions of values."""

    class Loader(yaml.SafeLoader):
        def compose_node(self, parent, index):
            if self.check_event(yaml.events.AliasEvent):
                raise _AliasRefused(self.peek_event().start_mark.line + 1)
            return super().compose_node(parent, index)

    return Loader


def normalize_spec(rc, index: int, spec, base_dir: str) -> dict:
    """Check one spec fully, so that a bad one stops the batch before anything is created."""
    where = f"task spec #{index + 1}"
    if not isinstance(spec, dict):
        raise UsageError(f"{where} is not an object")
    unknown = sorted(set(spec) - set(BATCH_FIELDS))
    if unknown:
        raise UsageError(f"{where}: unknown field {unknown[0]!r}")
    fields = {BATCH_FIELDS[key]: value for key, value in spec.items()}
    if "prompt_file" in fields and "prompt" not in fields:
        path = os.path.join(base_dir, str(fields.pop("prompt_file")))
        fields["prompt"] = read_text(path, "prompt file", prompt_bytes_cap())
    if "prompt" not in fields:
        raise UsageError(f"{where} has no prompt")
    skills = fields.get("skills")
    if isinstance(skills, str):
        fields["skills"] = split_skills([skills])
    paths, refs = [], []
    files = fields.get("files") or []
    if not isinstance(files, list):
        raise UsageError(f"{where}: files must be a list of paths or {{id, filename}} objects")
    for item in files:
        if isinstance(item, str):
            paths.append(item if os.path.isabs(item) else os.path.join(base_dir, item))
        else:
            refs.append(item)
    for flag in ("public", "allow_secrets"):
        if not isinstance(fields.get(flag, False), bool):
            raise UsageError(f"{where}: {flag} must be true or false")
    local = _local_repo_of(where, fields, base_dir)
    try:
        plan = plan_task(
            rc,
            fields["prompt"],
            local_repo=local is not None,
            paths=paths,
            refs=refs,
            executor=fields.get("executor"),
            model=fields.get("model"),
            skills=fields.get("skills"),
            github_url=fields.get("github_url"),
            branch_name=fields.get("branch"),
            workspace_id=fields.get("workspace"),
        )
    except rc.InputError as error:
        raise UsageError(f"{where}: {error}") from None
    plan.update(public=fields.get("public", False), name=fields.get("name"), local=local)
    return plan


def _local_repo_of(where: str, fields: dict, base_dir: str):
    """A spec's localRepo (its folder relative to the batch file), or None."""
    folder = fields.get("local_repo")
    if folder is None:
        if fields.get("allow_secrets"):
            raise UsageError(f"{where}: allowSecrets goes with localRepo")
        return None
    if not isinstance(folder, str) or not folder.strip():
        raise UsageError(f"{where}: localRepo must be the path of a git folder")
    if fields.get("github_url"):
        raise UsageError(f"{where}: localRepo and githubUrl both name the code: give one")
    folder = folder if os.path.isabs(folder) else os.path.join(base_dir, folder)
    return LocalRepo(folder, allow_secrets=fields.get("allow_secrets", False))


def hand_off_snapshots(client, out: Output, specs: list) -> list:
    """Snapshot each local repository the specs name, then upload each once, before any
    task is created (every refusal before anything is sent); return the specs with their
    prompts and bundles in place."""

    def key(local) -> tuple:
        return os.path.realpath(local.folder), local.allow_secrets

    snapshots = {}
    for spec in specs:
        local = spec.get("local")
        if local is not None and key(local) not in snapshots:
            snapshots[key(local)] = take_snapshot(out, local)
    uploads = {name: hand_off(client, out, snapshot) for name, snapshot in snapshots.items()}
    return [
        plan_with_handoff(spec, uploads[key(spec["local"])])
        if spec.get("local") is not None
        else spec
        for spec in specs
    ]


BatchOptions = options("BatchOptions", "client spec_file concurrency wait wait_timeout interval")


def cmd_batch(args, out: Output, run: Run) -> int:
    # Over 60 lines: its say, reported and ended share the specs, the exit codes and -q's
    # line format; apart, each would take all of them as arguments.
    opts = BatchOptions.of(args)
    spec_file, concurrency, wait = opts.spec_file, opts.concurrency, opts.wait
    timeout, interval = opts.wait_timeout, opts.interval
    rc = load_client_module()
    specs = load_batch_specs(spec_file)
    base_dir = os.getcwd() if spec_file == "-" else os.path.dirname(spec_file)
    specs = [normalize_spec(rc, i, spec, base_dir) for i, spec in enumerate(specs)]
    client = make_client(opts.client, concurrency=concurrency)
    specs = hand_off_snapshots(client, out, specs)
    silent = Output(quiet=True, progress=False)  # the JSON lines speak for each task

    def create(index: int) -> dict:
        spec = specs[index]
        task = create_planned(client, silent, run, spec)
        if spec.get("handoff") is not None:
            remember_handoff(task["id"], spec["handoff"])
        if spec["public"]:
            try:
                shared = client.tasks.set_visibility(task["id"], "public")
                task = {**task, "shareUrl": shared.get("shareUrl")}
            except rc.RebyteError as error:
                task = {**task, "shareError": one_line(str(error))}
        return task

    def say(index: int, stage: str, task=None, **fields) -> None:
        """One line for a spec: JSON with its index and name, or with -q
        `INDEX<TAB>NAME<TAB>ID<TAB>STATUS<TAB>URL` as it is created (with --wait the answer
        in place of the URL, as it ends; `INDEX<TAB>NAME<TAB>-<TAB>error<TAB>MESSAGE` for a
        spec that could not be created). NAME is `-` for a spec without one."""
        if out.quiet:
            name = specs[index].get("name") or "-"
            if task is None:
                print(tab_line(index, name, "-", "error", fields.get("error")), flush=True)
            elif stage == "done":
                text = answer_or_url(task)
                print(tab_line(index, name, task.get("id"), task.get("status"), text), flush=True)
            elif not wait:
                text = task.get("url")
                print(tab_line(index, name, task.get("id"), task.get("status"), text), flush=True)
            return
        line = {"index": index}
        if specs[index].get("name"):
            line["name"] = specs[index]["name"]
        line.update(stage=stage, **(task or {}), **fields)
        out.json_line(line)

    def reported(index: int, task, error) -> None:
        if task is not None:
            out.progress(f"created task {task['id']} ({index + 1}/{len(specs)}): {task.get('url')}")
            say(index, "created", without_answer(task))
        else:
            message = one_line(explain(rc, error))
            out.error(f"task spec #{index + 1} (index {index}): {message}")
            say(index, "error", error=message, exitCode=exit_code_for(rc, error))

    outcomes = run_concurrently(
        create, range(len(specs)), concurrency=concurrency, on_done=reported
    )
    codes = [exit_code_for(rc, error) for _, error in outcomes if error is not None]
    created = [(i, task) for i, (task, _) in enumerate(outcomes) if task is not None]
    if not (wait and created):
        return worst_exit(codes)

    def ended(position: int, task_id: str, task, error) -> None:
        """The done line: only what the created line could not say (no url, workspaceId...)."""
        index, made = created[position]
        task = task or {}
        shown = {"id": task_id, "status": task.get("status"), "result": task.get("result")}
        if task.get("resultAvailable") is False:
            shown["resultAvailable"] = False
            say_if_unavailable(out, {**made, **task})
        if out.quiet:
            shown["url"] = task.get("url") or made.get("url")  # printed when there is no answer
        if error is not None:
            shown["error"] = one_line(explain(rc, error))
            codes.append(exit_code_for(rc, error))
        else:
            codes.append(outcome_code(task))
        say(index, "done", shown)

    wait_many(
        client,
        out,
        run,
        [task["id"] for _, task in created],
        prompt_id=None,
        timeout=timeout,
        interval=interval,
        on_done=ended,
    )
    return worst_exit(codes)


COMMANDS = commands(
    command(
        ["batch"],
        _batch_arguments,
        cmd_batch,
        examples=[f"{RUN} batch tasks.jsonl --wait"],
        quiet="one line per task: INDEX<TAB>NAME<TAB>ID<TAB>STATUS<TAB>URL as it is created;\n"
        "  with --wait the answer on one line (or the URL) in place of the URL, as it ends\n"
        "  (INDEX<TAB>NAME<TAB>-<TAB>error<TAB>MESSAGE when it could not be created)",
    ),
)
