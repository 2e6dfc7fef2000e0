"""The snapshot of a local working folder (scripts/rebyte/localrepo.py), on tiny repositories
built in tmp_path: what goes in, what never does, the refusals, and a user's repository
that stays byte for byte as it was."""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT / "scripts") not in sys.path:
    sys.path.insert(0, str(ROOT / "scripts"))

from git_repos import fingerprint, git, make_repo, standard_repo, tree_contents, write  # noqa: E402
from rebyte import localrepo  # noqa: E402
from rebyte.localrepo import (  # noqa: E402
    PATCH_NAME,
    GitMissing,
    NotARepository,
    SnapshotRefused,
    SnapshotTooBig,
    instruction_block,
    looks_secret,
    make_snapshot,
)
from rebyte_client import InputError  # noqa: E402

UNICODE_NAME = "notes/ünï cødé file ñ.txt"


def clone_bundle(bundle: Path, where: Path) -> Path:
    git(where.parent, "clone", "-q", str(bundle), str(where))
    return where


def busy_repo(tmp_path: Path) -> Path:
    """The standard repository with every kind of uncommitted change on top."""
    repo = standard_repo(tmp_path / "user")
    write(repo, {".gitignore": "*.log\nbuild/\n"})
    git(repo, "add", ".gitignore")
    git(repo, "commit", "-q", "-m", "ignore rules")
    write(repo, {"README.md": "# Demo, edited but not staged\n"})
    write(repo, {"src/app.py": "def main():\n    return 'staged'\n"})
    git(repo, "add", "src/app.py")
    write(repo, {"src/app.py": "def main():\n    return 'staged, then edited again'\n"})
    write(repo, {"staged_new.txt": "added to the index only\n"})
    git(repo, "add", "staged_new.txt")
    write(repo, {UNICODE_NAME: "spaces and unicode\n", "deep/a/b/c/untracked.txt": "nested\n"})
    write(repo, {"assets/pixel.png": b"\x89PNG\r\n\x1a\n\x00\x00\xff\xfe" * 10})
    git(repo, "mv", "src/util.py", "src/helpers.py")
    (repo / "docs" / "guide.txt").unlink()
    os.symlink("src/app.py", repo / "link-to-app")
    write(repo, {"debug.log": "ignored\n", "build/out.o": b"\x00ignored"})
    return repo


def test_the_snapshot_is_the_working_tree_and_the_user_repo_is_untouched(tmp_path):
    repo = busy_repo(tmp_path)
    out = tmp_path / "out"
    out.mkdir()
    before = fingerprint(repo)
    head = git(repo, "rev-parse", "HEAD").decode().strip()

    snap = make_snapshot(repo, out)

    assert fingerprint(repo) == before
    assert snap.repo_root == repo and snap.head == head
    assert snap.bundle_path.parent == out and snap.bundle_size == snap.bundle_path.stat().st_size
    assert list(out.iterdir()) == [snap.bundle_path]
    git(repo, "bundle", "verify", "-q", str(snap.bundle_path))
    clone = clone_bundle(snap.bundle_path, tmp_path / "clone")
    assert git(clone, "rev-parse", "HEAD").decode().strip() == snap.sha
    assert git(clone, "rev-parse", "HEAD^").decode().strip() == head
    expected = tree_contents(repo)
    for ignored in ("debug.log", "build/out.o"):
        del expected[ignored]
    assert tree_contents(clone) == expected
    assert expected[UNICODE_NAME] == b"spaces and unicode\n"
    assert expected["link-to-app"] == ("link", "src/app.py")
    assert sorted(snap.paths) == sorted(expected) and snap.file_count == len(expected)
    assert "debug.log" not in snap.paths and "build/out.o" not in snap.paths
    assert set(snap.changed) >= {"README.md", "docs/guide.txt", "src/util.py", UNICODE_NAME}


def test_the_users_git_variables_cannot_redirect_the_snapshot(tmp_path, monkeypatch):
    repo = standard_repo(tmp_path / "user")
    other = make_repo(tmp_path / "other", {"x": "other repo\n"})
    monkeypatch.setenv("GIT_DIR", str(other / ".git"))
    monkeypatch.setenv("GIT_INDEX_FILE", str(other / ".git" / "index"))
    before = fingerprint(other)
    snap = make_snapshot(repo, tmp_path)
    assert "README.md" in snap.paths and "x" not in snap.paths
    monkeypatch.delenv("GIT_DIR")
    monkeypatch.delenv("GIT_INDEX_FILE")
    assert fingerprint(other) == before


def test_a_subfolder_snapshots_the_whole_repository(tmp_path):
    repo = standard_repo(tmp_path / "user")
    snap = make_snapshot(repo / "src", tmp_path)
    assert snap.repo_root == repo and "README.md" in snap.paths


def test_a_submodule_stays_a_gitlink(tmp_path):
    inner = make_repo(tmp_path / "inner", {"inner.txt": "inner\n"})
    inner_sha = git(inner, "rev-parse", "HEAD").decode().strip()
    repo = standard_repo(tmp_path / "user")
    git(repo, "update-index", "--add", "--cacheinfo", f"160000,{inner_sha},vendor/inner")
    git(repo, "commit", "-q", "-m", "submodule")
    git(repo, "clone", "-q", str(inner), "vendor/inner")  # a checked-out submodule
    (repo / "vendor" / "empty").mkdir()  # an uninitialised one is an empty folder
    git(repo, "update-index", "--add", "--cacheinfo", f"160000,{inner_sha},vendor/empty")
    git(repo, "commit", "-q", "-m", "uninitialised submodule")
    snap = make_snapshot(repo, tmp_path)
    clone = tmp_path / "clone"
    git(tmp_path, "clone", "-q", "--no-checkout", str(snap.bundle_path), str(clone))
    for name in ("vendor/inner", "vendor/empty"):
        entry = git(clone, "ls-tree", snap.sha, name).decode()
        assert entry.startswith(f"160000 commit {inner_sha}")
    assert "vendor/inner/inner.txt" not in snap.paths


def test_secrets_are_refused_by_name_then_sent_when_allowed(tmp_path):
    repo = standard_repo(tmp_path / "user")
    write(repo, {".env": "TOKEN=1\n", "keys/server.key": "k\n", ".env.example": "TOKEN=\n"})
    write(repo, {"notes/deploy": "-----BEGIN OPENSSH PRIVATE KEY-----\nabc\n"})
    out = tmp_path / "out"
    out.mkdir()
    before = fingerprint(repo)
    with pytest.raises(SnapshotRefused) as refused:
        make_snapshot(repo, out)
    assert refused.value.paths == [".env", "keys/server.key", "notes/deploy"]
    assert "\n" not in str(refused.value) and ".env, keys/server.key" in str(refused.value)
    assert isinstance(refused.value, InputError)
    assert list(out.iterdir()) == [] and fingerprint(repo) == before
    snap = make_snapshot(repo, out, allow_secrets=True)
    assert {".env", "keys/server.key", "notes/deploy", ".env.example"} <= set(snap.paths)


def test_a_committed_secret_is_refused_too(tmp_path):
    repo = make_repo(tmp_path / "user", {"README": "x\n", "config/id_rsa": "key\n"})
    with pytest.raises(SnapshotRefused) as refused:
        make_snapshot(repo, tmp_path)
    assert refused.value.paths == ["config/id_rsa"]


def test_an_ignored_secret_is_simply_left_out(tmp_path):
    repo = make_repo(tmp_path / "user", {"README": "x\n", ".gitignore": ".env\n"})
    write(repo, {".env": "TOKEN=1\n"})
    snap = make_snapshot(repo, tmp_path)
    assert ".env" not in snap.paths


@pytest.mark.parametrize(
    "name, content, secret",
    [
        (".env.production", "A=1", True),
        (".env.sample", "A=", False),
        ("ssh/id_ed25519", "x", True),
        ("ssh/id_ed25519.pub", "ssh-ed25519 AAAA", False),
        ("certs/site.pem", "x", True),
        ("certs/client.P12", "x", True),
        ("certs/client.pfx", "x", True),
        ("home/.aws/credentials", "[default]", True),
        ("gcloud/application_default_credentials.json", "{}", True),
        ("conf/credentials.json", "{}", True),
        ("conf/sa-key.json", '{\n  "type": "service_account",\n  "project_id": "p"}', True),
        ("conf/settings.json", '{"type": "app"}', False),
        ("home/.azure/accessTokens.json", "[]", True),
        (".netrc", "machine x", True),
        ("_netrc", "machine x", True),
        (".npmrc", "//registry.npmjs.org/:_authToken=abc\n", True),
        (".npmrc", "save-exact=true\n", False),
        (".pypirc", "[pypi]\nusername = u\npassword = p\n", True),
        (".pypirc", "[pypi]\nusername = u\n", False),
        ("docs/key-notes.txt", "\ufeff-----BEGIN RSA PRIVATE KEY-----\n", True),
        ("docs/public.txt", "-----BEGIN PUBLIC KEY-----\n", False),
        ("src/main.py", "print('hi')\n", False),
    ],
)
def test_what_looks_like_a_secret(tmp_path, name, content, secret):
    write(tmp_path, {name: content})
    assert looks_secret(tmp_path, name) is secret


def test_over_the_size_limit_names_the_biggest_files(tmp_path):
    repo = standard_repo(tmp_path / "user")
    write(repo, {"big/one.bin": b"x" * 5000, "big/two.bin": b"y" * 3000})
    out = tmp_path / "out"
    out.mkdir()
    with pytest.raises(SnapshotTooBig) as too_big:
        make_snapshot(repo, out, max_bytes=4096)
    error = too_big.value
    assert error.size > 8000 and error.limit == 4096
    assert [path for path, _ in error.biggest[:2]] == ["big/one.bin", "big/two.bin"]
    assert "big/one.bin" in str(error) and "\n" not in str(error)
    assert list(out.iterdir()) == []
    assert localrepo.DEFAULT_MAX_BYTES == 512 * 1024 * 1024


def test_refusals_for_folders_that_are_not_snapshots(tmp_path):
    plain = tmp_path / "plain"
    plain.mkdir()
    with pytest.raises(NotARepository, match="not inside a git working folder"):
        make_snapshot(plain, tmp_path)
    with pytest.raises(NotARepository, match="is not a folder"):
        make_snapshot(tmp_path / "missing", tmp_path)
    empty = make_repo(tmp_path / "empty", {"a.txt": "a\n"}, commit=False)
    with pytest.raises(NotARepository, match="no commit yet"):
        make_snapshot(empty, tmp_path)
    git(tmp_path, "init", "-q", "--bare", "bare.git")
    with pytest.raises(NotARepository):
        make_snapshot(tmp_path / "bare.git", tmp_path)
    repo = standard_repo(tmp_path / "user")
    with pytest.raises(InputError, match="not a folder to write"):
        make_snapshot(repo, tmp_path / "nowhere")


def test_a_shallow_clone_is_refused(tmp_path):
    repo = standard_repo(tmp_path / "user")
    write(repo, {"README.md": "second\n"})
    git(repo, "commit", "-qam", "second")
    git(tmp_path, "clone", "-q", "--depth", "1", f"file://{repo}", "shallow")
    with pytest.raises(InputError, match="shallow clone: run `git fetch --unshallow`"):
        make_snapshot(tmp_path / "shallow", tmp_path)


def test_no_scratch_folder_is_left_behind(tmp_path, monkeypatch):
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    repo = standard_repo(tmp_path / "user")
    make_snapshot(repo, tmp_path)
    write(repo, {".env": "A=1\n"})
    with pytest.raises(SnapshotRefused):
        make_snapshot(repo, tmp_path)
    assert list(scratch.iterdir()) == []


def test_no_git_is_a_clear_refusal(tmp_path, monkeypatch):
    from rebyte import gitrun

    monkeypatch.setattr(gitrun.shutil, "which", lambda name: None)
    with pytest.raises(GitMissing, match="git is not installed"):
        make_snapshot(tmp_path, tmp_path)
    assert issubclass(GitMissing, InputError)


def test_the_instruction_block(tmp_path):
    sha = "0123456789abcdef0123456789abcdef01234567"
    text = instruction_block("rebyte-snapshot-0123-ab12.bundle", sha)
    assert PATCH_NAME == "rebyte-change.patch"
    assert "/code/rebyte-snapshot-0123-ab12.bundle" in text
    assert f"git checkout --detach {sha}" in text
    assert f"git diff --binary --cached {sha} > /code/{PATCH_NAME}" in text
    assert len(text.strip().splitlines()) <= 12


def install_skill(repo: Path, folder: str, *, name: str = "skill-as-a-service") -> None:
    """A copy of this skill's SKILL.md and launcher at `folder`, as `npx skills add` leaves it."""
    skill_md = (ROOT / "SKILL.md").read_text(encoding="utf-8")
    if name != "skill-as-a-service":
        skill_md = skill_md.replace("name: skill-as-a-service", f"name: {name}", 1)
    write(
        repo,
        {
            f"{folder}/SKILL.md": skill_md,
            f"{folder}/scripts/rebyte_cli.py": (ROOT / "scripts/rebyte_cli.py").read_bytes(),
            f"{folder}/references/api.md": b"x" * 6000,
        },
    )


def test_untracked_installs_of_this_skill_are_left_out(tmp_path):
    repo = standard_repo(tmp_path / "user")
    install_skill(repo, ".agents/skills/skill-as-a-service")
    install_skill(repo, ".claude/skills/rebyte")
    write(repo, {"notes.txt": "the user's own work\n"})
    out = tmp_path / "out"
    out.mkdir()

    snap = make_snapshot(repo, out, max_bytes=4096)

    assert snap.left_out == [".agents/skills/skill-as-a-service/", ".claude/skills/rebyte/"]
    assert not [p for p in snap.paths if p.startswith((".agents/", ".claude/"))]
    assert "notes.txt" in snap.paths and snap.total_bytes < 4096
    clone = clone_bundle(snap.bundle_path, tmp_path / "clone")
    assert not (clone / ".agents").exists() and (clone / "notes.txt").is_file()


def test_only_a_whole_untracked_install_of_this_very_skill_is_left_out(tmp_path):
    repo = standard_repo(tmp_path / "user")
    install_skill(repo, "skills/other", name="some-other-skill")
    install_skill(repo, "tracked/skills/skill-as-a-service")
    git(repo, "add", "tracked/skills/skill-as-a-service/references/api.md")
    git(repo, "commit", "-q", "-m", "track one file of the install")
    write(repo, {"tracked/skills/skill-as-a-service/references/api.md": "edited\n"})
    write(repo, {"card/SKILL.md": "---\nname: skill-as-a-service\n---\n"})

    snap = make_snapshot(repo, tmp_path)

    assert snap.left_out == []
    assert {
        "skills/other/SKILL.md",
        "skills/other/scripts/rebyte_cli.py",
        "tracked/skills/skill-as-a-service/SKILL.md",
        "tracked/skills/skill-as-a-service/scripts/rebyte_cli.py",
        "card/SKILL.md",
    } <= set(snap.paths)
    assert "tracked/skills/skill-as-a-service/references/api.md" in snap.changed


def test_the_same_folder_state_is_the_same_snapshot(tmp_path):
    repo = busy_repo(tmp_path)
    first = make_snapshot(repo, tmp_path)
    head_date = git(repo, "show", "-s", "--format=%ct %cI", "HEAD").decode().split()
    clone = clone_bundle(first.bundle_path, tmp_path / "clone")
    snap_date = git(clone, "show", "-s", "--format=%ct %cI %at", first.sha).decode().split()
    assert snap_date == head_date + [head_date[0]]  # dated as HEAD, not now
    assert make_snapshot(repo, tmp_path).sha == first.sha
    write(repo, {"README.md": "changed again\n"})
    assert make_snapshot(repo, tmp_path).sha != first.sha


def test_a_run_snapshotting_the_same_state_at_the_same_time_does_not_trip_over_it(tmp_path):
    repo = standard_repo(tmp_path / "user")
    out = tmp_path / "out"
    out.mkdir()
    first = make_snapshot(repo, out)
    held = out / (first.bundle_path.name + ".lock")
    held.write_bytes(b"")  # another run's git is writing that very bundle right now
    again = make_snapshot(repo, out)
    assert again.bundle_path == first.bundle_path and again.sha == first.sha
    git(repo, "bundle", "verify", "-q", str(again.bundle_path))
    assert sorted(p.name for p in out.iterdir()) == sorted([first.bundle_path.name, held.name])
