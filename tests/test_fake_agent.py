"""The simulated agent (tests/fake_agent.py): each marker makes the change its docstring
promises, the patch is deterministic, and the module stands alone (nothing from scripts/)."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import fake_agent
import pytest
from fake_agent import (
    ADDED_PATH,
    BINARY_PATH,
    CONFLICT_LINE,
    EDIT_LINE,
    SYMLINK_PATH,
    markers,
    run_agent,
)
from git_repos import git, standard_repo

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT / "scripts") not in sys.path:
    sys.path.insert(0, str(ROOT / "scripts"))

from rebyte.localrepo import make_snapshot  # noqa: E402


@pytest.fixture
def bundle(tmp_path) -> Path:
    repo = standard_repo(tmp_path / "user")
    return make_snapshot(repo, tmp_path).bundle_path


def numstat(patch: bytes, where: Path) -> str:
    return git(where, "apply", "--numstat", "--summary", "-", input=patch).decode()


def test_markers_default_to_edit():
    assert markers("please fix the bug") == {"edit"}
    assert markers("[add] and [delete] but not [unknown]") == {"add", "delete"}


@pytest.mark.parametrize(
    "marker, expected",
    [
        ("[edit]", ["1\t0\tREADME.md"]),
        ("[conflict]", ["1\t1\tREADME.md"]),
        ("[add]", [f"2\t0\t{ADDED_PATH}", f"create mode 100644 {ADDED_PATH}"]),
        ("[binary]", [f"-\t-\t{BINARY_PATH}"]),
        ("[delete]", ["0\t2\tsrc/util.py", "delete mode 100644 src/util.py"]),
        ("[rename]", ["rename docs/{guide.txt => renamed-guide.txt} (100%)"]),
        ("[symlink]", [f"create mode 120000 {SYMLINK_PATH}"]),
        ("[hostile]", ["2\t0\t.git/hooks/post-checkout", "1\t0\t../outside.txt"]),
    ],
)
def test_each_marker_makes_its_change(tmp_path, bundle, marker, expected):
    patch = run_agent(bundle, f"do it {marker}", work_dir=tmp_path / "agent")
    assert patch is not None
    report = numstat(patch, tmp_path)
    for line in expected:
        assert line in report


def test_the_edits_themselves(tmp_path, bundle):
    run_agent(bundle, "[edit][conflict]", work_dir=tmp_path / "agent")
    readme = (tmp_path / "agent" / "repo" / "README.md").read_text()
    assert readme.startswith(CONFLICT_LINE) and readme.endswith(EDIT_LINE)


def test_no_patch_and_bytes_input(tmp_path, bundle):
    assert run_agent(bundle.read_bytes(), "[no-patch]", work_dir=tmp_path / "a") is None
    patch = run_agent(bundle.read_bytes(), "[add]", work_dir=tmp_path / "b")
    assert ADDED_PATH.encode() in patch


def test_deterministic_and_follow_ups_build_on_the_clone(tmp_path, bundle):
    prompt = "[edit][add][binary][delete][rename]"
    first = run_agent(bundle, prompt, work_dir=tmp_path / "one")
    assert run_agent(bundle, prompt, work_dir=tmp_path / "two") == first
    follow_up = run_agent(bundle, "[conflict]", work_dir=tmp_path / "one")
    assert ADDED_PATH.encode() in follow_up and CONFLICT_LINE.encode() in follow_up


def test_it_imports_nothing_from_scripts():
    tree = ast.parse(Path(fake_agent.__file__).read_text(encoding="utf-8"))
    imported = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            imported.add((node.module or "").split(".")[0])
    assert imported <= {"__future__", "os", "re", "subprocess", "pathlib", "typing"}
