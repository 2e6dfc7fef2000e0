"""The CLI's command table: help with runnable examples, groups, options by command path.

- Each subcommand's --help ends with its examples (not the exit-code block, which
  stays in the top-level --help), and every example runs against the local server.
- Each command is declared in a module of its own (rebyte/cli/*.py), imported only
  when a command line names it (`--help` lists them from app's tables alone);
  global options work before and after the command at every level; a group's verb
  and a top-level command of the same name never share options.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest
import requests
from cli_runner import CLI, ROOT, as_documented, cli_env, run_cli
from docs_support import Block, parse_command
from git_repos import standard_repo

sys.path.insert(0, str(CLI.parent))
from rebyte.cli import app  # noqa: E402

TOP_LEVEL = list(app.COMMANDS)
ROWS = {(word,): rows()[(word,)] for word, (_, rows) in app.COMMANDS.items()}
for _group in app.GROUPS:
    ROWS.update(app.group_rows(_group))
GROUP_VERBS = [path for path in ROWS if len(path) == 2]
EXAMPLES = [
    (path[0], line) for path, row in ROWS.items() if len(path) == 1 for line in row.examples
]
BATCH_SPECS = '{"prompt": "Review the API docs"}\n{"prompt": "Review the CLI docs"}\n'


def test_the_top_level_help_keeps_the_exit_codes_and_environment():
    result = run_cli("--help", env=cli_env(None, None))
    assert result.returncode == 0
    assert "exit codes:" in result.stdout and "environment:" in result.stdout
    for name in TOP_LEVEL:
        assert name in result.stdout


@pytest.mark.parametrize("name", TOP_LEVEL)
def test_a_subcommand_help_ends_with_its_examples_not_the_epilog(name):
    result = run_cli(name, "--help", env=cli_env(None, None))
    assert result.returncode == 0, result.stderr
    assert "exit codes:" not in result.stdout and "REBYTE_API_KEY" not in result.stdout
    shown = result.stdout.rstrip("\n").split("\nexamples:\n")
    assert len(shown) == 2, result.stdout
    lines = [as_documented(line.strip()) for line in shown[1].splitlines()]
    assert 1 <= len(lines) <= 2
    assert lines == list(ROWS[(name,)].examples)
    assert all(line.startswith(f"python3 scripts/rebyte_cli.py {name} ") for line in lines)


@pytest.mark.parametrize("path", GROUP_VERBS, ids=" ".join)
def test_a_group_verbs_help_ends_with_its_examples_not_the_epilog(path):
    result = run_cli(*path, "--help", env=cli_env(None, None))
    assert result.returncode == 0, result.stderr
    assert "exit codes:" not in result.stdout and "REBYTE_API_KEY" not in result.stdout
    shown = result.stdout.rstrip("\n").split("\nexamples:\n")
    assert len(shown) == 2, result.stdout
    lines = [as_documented(line.strip()) for line in shown[1].splitlines()]
    assert 1 <= len(lines) <= 2
    assert lines == list(ROWS[path].examples)
    invoked = f"python3 scripts/rebyte_cli.py {' '.join(path)}"
    assert all(line == invoked or line.startswith(invoked + " ") for line in lines)


@pytest.mark.parametrize("name", list(app.GROUPS))
def test_a_groups_help_ends_with_an_example_of_each_verb(name):
    result = run_cli(name, "--help", env=cli_env(None, None))
    assert result.returncode == 0, result.stderr
    assert "exit codes:" not in result.stdout
    shown = result.stdout.rstrip("\n").split("\nexamples:\n")
    assert len(shown) == 2, result.stdout
    lines = [as_documented(line.strip()) for line in shown[1].splitlines()]
    assert lines == [row.examples[0] for row in app.group_rows(name).values()]
    assert all(line.startswith(f"python3 scripts/rebyte_cli.py {name} ") for line in lines)


def test_create_help_stays_short_and_says_where_the_rest_is():
    """`create --help` is what an agent reads first: under 2,600 bytes at 80 columns, with
    each option, what -q prints, examples, and where the longer explanations are."""
    result = run_cli("create", "--help", env=cli_env(None, None, COLUMNS="80"))
    assert result.returncode == 0, result.stderr
    assert len(result.stdout.encode("utf-8")) < 2600, len(result.stdout.encode("utf-8"))
    for option in ("--prompt", "--prompt-file", "--file", "--file-ref", "--skills", "--wait"):
        assert f"  {option} " in result.stdout, option
    for option in ("--watch", "--download", "--workspace", "--new-computer", "--dry-run"):
        assert f"  {option} " in result.stdout, option
    for option in ("--local-repo", "--attempts", "--allow-secrets", "--max-snapshot-mb"):
        assert f"  {option} " in result.stdout, option
    assert "with -q: " in result.stdout and "\nexamples:\n" in result.stdout
    assert "references/examples.md" in result.stdout
    assert (ROOT / "references" / "examples.md").exists()


def _task(server, key: str, repo=None) -> dict:
    """A finished task (its prompt takes no time) for examples that act on one, created
    through the CLI as a user's is, so that its local record knows its workspace; with
    `repo`, a round-trip task of that repository (the local server's agent leaves a patch)."""
    local = ["--local-repo", str(repo)] if repo is not None else []
    created = run_cli(
        "create",
        "--prompt",
        "placeholder [duration=0]",
        *local,
        base_url=server.base_url,
        api_key=key,
    )
    assert created.returncode == 0, created.stderr
    headers = {"API_KEY": key}
    got = requests.get(f"{server.base_url}/tasks/{created.json()['id']}", headers=headers)
    got.raise_for_status()
    return got.json()


@pytest.mark.parametrize("name, line", EXAMPLES, ids=[line for _, line in EXAMPLES])
def test_every_help_example_runs(fake_rebyte, api_key, tmp_path, name, line):
    command = parse_command(Block("help", 0, "bash", line), 0, line)
    assert command is not None and command.command == name, line
    (tmp_path / "scripts").symlink_to(ROOT / "scripts", target_is_directory=True)
    (tmp_path / "data.csv").write_text("region,sales\nnorth,10\nsouth,7\n", encoding="utf-8")
    (tmp_path / "tasks.jsonl").write_text(BATCH_SPECS, encoding="utf-8")
    cwd, repo = tmp_path, None
    if name in ("diff", "apply"):  # run in a repository (`--repo ../project` from beside it)
        repo = standard_repo(tmp_path / "project")
        cwd = tmp_path / "elsewhere" if "--repo" in command.args else repo
        cwd.mkdir(exist_ok=True)
    first, second = _task(fake_rebyte, api_key, repo), _task(fake_rebyte, api_key, repo)
    values = {"TASK_ID_2": second["id"], "TASK_ID_3": second["id"], "TASK_ID": first["id"]}
    args = [values.get(arg, arg) for arg in command.args]
    result = run_cli(*args, base_url=fake_rebyte.base_url, api_key=api_key, cwd=str(cwd))
    assert result.returncode == 0, (args, result.stderr)
    assert "Traceback" not in result.stderr
    refused = [e for e in fake_rebyte.requests(listener=None) if e["status"] and e["status"] >= 400]
    assert not refused, refused
    if command.quiet:
        assert result.stdout.strip() and not result.stdout.lstrip().startswith("{")
    elif name == "batch" or "--json" in args:
        assert result.json_lines()
    else:
        result.json()


# --------------------------------------------------------------------------- groups

GROUP_MODULE = """
import json

from rebyte.cli.options import command, commands


def _arguments(parser):
    parser.add_argument("name")
    parser.add_argument("--force", action="store_true")


def _show(args, out, run):
    print(json.dumps({
        "path": [args.command, args.verb],
        "name": getattr(args, "name", None),
        "force": getattr(args, "force", None),
        "baseUrl": args.base_url,
        "maxRetries": args.max_retries,
        "quiet": args.quiet,
        "verbose": args.verbose,
    }))
    return 0


COMMANDS = commands(
    command(
        ["demo-group", "delete"], _arguments, _show, help="delete a demo thing",
        examples=["python3 scripts/rebyte_cli.py demo-group delete NAME --force"],
    ),
    command(
        ["demo-group", "list"], lambda parser: None, _show, help="list demo things",
        examples=["python3 scripts/rebyte_cli.py demo-group list"],
    ),
)
"""

RUN_WITH_GROUP = """
import json, sys
sys.path[:0] = [sys.argv[1], sys.argv[2]]
from rebyte.cli import app


def demo_rows():
    import cli_test_demo_group

    return cli_test_demo_group.COMMANDS


app.GROUPS["demo-group"] = ("demo things", demo_rows)
try:
    code = app.main(sys.argv[3:])
except SystemExit as exit:
    code = exit.code
print(json.dumps({"imported": "cli_test_demo_group" in sys.modules}), file=sys.stderr)
sys.exit(code)
"""


@pytest.fixture
def with_group(tmp_path):
    """Run the CLI with a test-only group `demo-group` whose module sits in tmp_path."""
    (tmp_path / "cli_test_demo_group.py").write_text(GROUP_MODULE, encoding="utf-8")

    def run(*args: str):
        done = subprocess.run(
            [sys.executable, "-c", RUN_WITH_GROUP, str(tmp_path), str(CLI.parent), *args],
            capture_output=True,
            text=True,
            timeout=30,
            env=cli_env(None, None),
        )
        imported = json.loads(done.stderr.strip().splitlines()[-1])["imported"]
        return done, imported

    return run


URL = "http://127.0.0.1:9/v1"


@pytest.mark.parametrize(
    "args",
    [
        ["--base-url", URL, "-q", "--max-retries", "1", "demo-group", "delete", "x", "--force"],
        ["demo-group", "--base-url", URL, "-q", "--max-retries", "1", "delete", "x", "--force"],
        ["demo-group", "delete", "x", "--force", "--base-url", URL, "-q", "--max-retries", "1"],
        ["-q", "demo-group", "--max-retries", "1", "delete", "--base-url", URL, "x", "--force"],
    ],
    ids=["before-group", "between", "after-verb", "spread"],
)
def test_global_options_work_at_every_level_of_a_group(with_group, args):
    done, imported = with_group(*args)
    assert done.returncode == 0, done.stderr
    assert imported
    assert json.loads(done.stdout) == {
        "path": ["demo-group", "delete"],
        "name": "x",
        "force": True,
        "baseUrl": URL,
        "maxRetries": 1,
        "quiet": True,
        "verbose": False,
    }


def test_a_group_command_left_unset_gets_the_global_defaults(with_group):
    done, _ = with_group("demo-group", "list")
    assert done.returncode == 0, done.stderr
    shown = json.loads(done.stdout)
    assert shown["path"] == ["demo-group", "list"]
    assert (shown["baseUrl"], shown["maxRetries"], shown["quiet"]) == (None, None, False)


def test_a_group_module_is_imported_only_when_the_command_line_names_it(with_group):
    for args in (["--help"], ["get", "--help"], ["delete", "x"], ["list", "--base-url", URL]):
        done, imported = with_group(*args)
        assert not imported, args
    done, imported = with_group("--help")
    assert "demo-group" in done.stdout and "demo things" in done.stdout
    done, imported = with_group("demo-group", "--help")
    assert done.returncode == 0 and imported
    assert "delete" in done.stdout and "list" in done.stdout


def test_a_group_verb_and_a_top_level_command_never_share_options(with_group):
    done, _ = with_group("delete", "x", "--force")
    assert done.returncode == 2 and "--force" in done.stderr
    done, _ = with_group("demo-group", "delete", "x", "--yes")
    assert done.returncode == 2 and "--yes" in done.stderr
    done, _ = with_group("demo-group")
    assert done.returncode == 2 and "required" in done.stderr
    done, _ = with_group("demo-group", "delete", "--help")
    assert done.returncode == 0
    assert done.stdout.rstrip().endswith("demo-group delete NAME --force")
    assert "exit codes:" not in done.stdout


def test_only_the_command_in_use_gets_its_options():
    def options(parser, *path):
        for word in path:
            action = next(a for a in parser._actions if getattr(a, "choices", None))
            parser = action.choices[word]
        return {o for a in parser._actions for o in a.option_strings}

    parser = app.build_parser(("get",))
    assert "--base-url" in options(parser, "get")
    assert options(parser, "create") == {"-h", "--help"}
    assert "--yes" not in options(parser, "get")
    every = app.build_parser()
    assert {"--prompt", "--wait"} <= options(every, "create")
    assert {"--yes", "-y"} <= options(every, "delete")


def test_help_imports_nothing_beyond_what_the_module_needs():
    """What --help loads beyond the CLI's own modules and argparse's help would slow every
    run that shows help; the top-level --help imports no command's module."""
    probe = textwrap.dedent(
        """
        import sys
        sys.path.insert(0, sys.argv[1])
        import __future__, argparse, json, os, re
        plain = argparse.ArgumentParser(prog="plain")
        plain.add_subparsers().add_parser("get")
        for args in (["--help"], ["get", "--help"]):
            try:
                plain.parse_args(args)
            except SystemExit:
                pass
        before = set(sys.modules)
        from rebyte.cli import app
        for args in (["--help"], ["get", "--help"]):
            try:
                app.main(args)
            except SystemExit:
                pass
            print(" ".join(sorted(set(sys.modules) - before)), file=sys.stderr)
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", probe, str(CLI.parent)], capture_output=True, text=True, timeout=30
    )
    top, get = (line.split() for line in done.stderr.splitlines())
    assert top == ["rebyte", "rebyte.cli", "rebyte.cli.app"] + [
        f"rebyte.cli.{name}" for name in ("options", "output")
    ], done.stderr
    assert all(name.startswith("rebyte.cli.") for name in set(get) - set(top)), done.stderr
    assert "rebyte.cli.tasks" in get and "rebyte.cli.create" not in get


@pytest.mark.parametrize(
    "argv, path",
    [
        (["--base-url", "http://x/v1", "create", "-p", "hi"], ("create",)),
        (["--base-url=http://x/v1", "-q", "get", "t1"], ("get",)),
        (["--base", "create", "list"], ("list",)),  # an abbreviation takes its value
        (["-q", "delete", "demo-group", "x"], ("delete",)),
        (["demo-group", "--timeout", "3", "delete", "x"], ("demo-group", "delete")),
        (["--max-retries", "1", "demo-group", "-v", "list"], ("demo-group", "list")),
        (["demo-group"], ("demo-group",)),
        (["--", "get"], ()),
        ([], ()),
    ],
)
def test_the_command_path_skips_global_options(monkeypatch, argv, path):
    monkeypatch.setitem(app.GROUPS, "demo-group", ("demo things", dict))
    assert app.command_path(argv) == path


def test_help_and_hints_name_the_cli_as_it_was_run(fake_rebyte, api_key, tmp_path):
    """An agent that ran `python3 /its/skill/scripts/rebyte_cli.py` gets advice it can run
    as given, from any folder; a path with a space comes quoted. The error prefix stays."""
    skill = tmp_path / "my skill"
    skill.mkdir()
    (skill / "scripts").symlink_to(ROOT / "scripts", target_is_directory=True)
    cli = skill / "scripts" / "rebyte_cli.py"
    env = cli_env(fake_rebyte.base_url, api_key)
    shown = f"python3 '{cli}'"

    def run(*args):
        return subprocess.run(
            [sys.executable, str(cli), *args],
            capture_output=True,
            text=True,
            env=env,
            cwd=str(tmp_path),
            timeout=60,
        )

    helped = run("list", "--help")
    assert helped.returncode == 0, helped.stderr
    assert f"\n  {shown} list --limit 5\n" in helped.stdout
    missing = run("get", "no-such-task")
    assert missing.returncode == 4, missing.stderr
    assert missing.stderr.startswith("rebyte_cli.py: error: ")
    assert f"list tasks with `{shown} list`" in missing.stderr
    misused = run("webhook", "add", "--bogus")
    assert misused.returncode == 2
    assert f"(see `{shown} webhook add --help`)" in misused.stderr
    plain = run_cli("get", "no-such-task", base_url=fake_rebyte.base_url, api_key=api_key)
    assert f"`python3 {CLI} list`" in plain.stderr
