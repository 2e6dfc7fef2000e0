"""Downloading a workspace's artifacts: for `artifacts download`, and `--download` after a wait."""

from __future__ import annotations

from .errors import EXIT_API, EXIT_USAGE, worst_exit
from .output import Output, TransferBar, format_size
from .session import load_client_module, workspace_for


def fetch_artifacts(
    client,
    out: Output,
    task_or_workspace: str,
    names,
    dest: str,
    *,
    overwrite: bool,
    replace_hint: str = "use --overwrite to replace it, or another --out",
    existing_is_error: bool = True,
    workspace_id=None,
):
    """Download the artifacts (all when `names` is None); return (files, refused, exit code).

    `workspace_id`: the task's workspace when the caller holds it (see workspace_for).
    Each name not downloaded is reported on stderr and the others are downloaded.
    A file that exists already is kept, with `replace_hint`: bad local input (exit 2)
    when the user asked for that file, only a note after a task's wait, whose
    outcome must not read as a command that sent nothing. A name that is unsafe or
    collides with another (the server's doing): exit 5.
    """
    # Over 60 lines: mostly the keywords of the two downloads (a refused name is retried
    # without it, here and only here) and the docstring.
    rc = load_client_module()
    workspace_id = workspace_for(client, task_or_workspace, workspace_id)
    if names is None:
        names = [entry["name"] for entry in client.artifacts.list(workspace_id)]
    bar = TransferBar(out, "downloading")
    refused, existing, codes = [], [], []
    try:
        try:
            files = (
                client.artifacts.download_all(
                    workspace_id, names, dest, overwrite=overwrite, progress=bar.update
                )
                if names
                else []
            )
        except rc.ArtifactsRefusedError as error:
            refused = [{"name": name, "reason": reason} for name, reason in error.refused]
            existing = error.existing
            skipped = {item["name"] for item in refused}
            remaining = [name for name in names if name not in skipped]
            files = (
                client.artifacts.download_all(
                    workspace_id, remaining, dest, overwrite=overwrite, progress=bar.update
                )
                if remaining
                else []
            )
    finally:
        bar.close()
    for item in refused:
        if item["name"] in existing and not existing_is_error:
            out.note(f"artifact {item['name']!r} kept as it was: {item['reason']}; {replace_hint}")
        elif item["name"] in existing:
            codes.append(EXIT_USAGE)
            out.error(f"artifact {item['name']!r} not downloaded: {item['reason']}; {replace_hint}")
        else:
            codes.append(EXIT_API)
            out.error(f"artifact {item['name']!r} not downloaded: {item['reason']}")
    for file in files:
        out.progress(f"downloaded {file['name']} ({format_size(file['bytes'])}) to {file['path']}")
    return files, refused, worst_exit(codes)
