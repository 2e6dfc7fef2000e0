"""`make audit`: the skill security scan a user's tools run, on what an install copies.

    python tests/audit.py [--scanner PATH] [--json FILE] [--rev REV]

Extracts the tree exactly as `git archive REV` gives it (HEAD by default: what is
committed, which is what `npx skills add` copies) into a temporary folder, runs
`skill-scanner scan DIR --use-behavioral --format json` on it (offline analyzers only:
no LLM, no VirusTotal, no network), prints every finding and the counts by severity,
and exits 1 if a CRITICAL or HIGH finding names a file outside scripts/, other than
.ci/run (the entry point CI requires). Findings in scripts/, SKILL.md, references/ and
cross-file chains that name no single file are printed, explained in the README's
"Security scan" section, and do not fail the audit.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SEVERITIES = ("CRITICAL", "HIGH", "MEDIUM", "LOW", "INFO")
BLOCKING = {"CRITICAL", "HIGH"}
ALLOWED_FILES = {".ci/run"}
ALLOWED_PREFIX = "scripts/"


def extract_archive(rev: str, destination: Path) -> None:
    """The tree of `rev` as `git archive` gives it, written under `destination`."""
    archive = subprocess.run(
        ["git", "archive", "--format=tar", rev], cwd=ROOT, capture_output=True, check=True
    ).stdout
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        for member in tar.getmembers():
            if member.issym() or member.islnk() or member.name.startswith(("/", "..")):
                raise SystemExit(f"audit: unexpected archive member {member.name!r}")
        if hasattr(tarfile, "data_filter"):
            tar.extractall(destination, filter="data")
        else:  # Python before 3.9.17/3.10.12/3.11.4: the check above is the filter
            tar.extractall(destination)


def relative(path: str | None, tree: Path) -> str | None:
    """A finding's file, relative to the scanned tree (the scanner mixes both forms)."""
    if not path:
        return None
    try:
        return Path(path).resolve().relative_to(tree.resolve()).as_posix()
    except ValueError:
        return Path(path).as_posix()


def blocks(finding: dict) -> bool:
    name = finding["file"]
    return (
        finding["severity"] in BLOCKING
        and name is not None
        and not name.startswith(ALLOWED_PREFIX)
        and name not in ALLOWED_FILES
    )


def scan(scanner: str, tree: Path) -> list:
    report = tree.parent / "scan.json"
    done = subprocess.run(
        [scanner, "scan", str(tree), "--use-behavioral", "--format", "json", "-o", str(report)],
        capture_output=True,
        text=True,
        timeout=900,
        env={k: v for k, v in os.environ.items() if not k.endswith("_API_KEY")},
    )
    if done.returncode != 0 or not report.exists():
        raise SystemExit(f"audit: {scanner} exited {done.returncode}:\n{done.stderr[-2000:]}")
    data = json.loads(report.read_text(encoding="utf-8"))
    return [
        {
            "severity": str(f.get("severity", "")).upper(),
            "rule": f.get("rule_id", ""),
            "file": relative(f.get("file_path"), tree),
            "line": f.get("line_number"),
            "title": f.get("title") or "",
            "description": " ".join(str(f.get("description") or "").split()),
            "files": (f.get("metadata") or {}).get("files_involved") or [],
        }
        for f in data.get("findings", [])
    ]


def where(finding: dict) -> str:
    if finding["file"] is None:
        return "(cross-file: " + ", ".join(sorted(finding["files"])[:4]) + ", ...)"
    return finding["file"] + (f":{finding['line']}" if finding["line"] else "")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scanner", default=shutil.which("skill-scanner") or "skill-scanner")
    parser.add_argument("--rev", default="HEAD")
    parser.add_argument("--json", help="also write the findings here")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="skill-audit-") as scratch:
        tree = Path(scratch) / "skill-as-a-service"
        tree.mkdir()
        extract_archive(args.rev, tree)
        findings = scan(args.scanner, tree)

    order = {name: n for n, name in enumerate(SEVERITIES)}
    findings.sort(key=lambda f: (order.get(f["severity"], 9), f["file"] or "", f["line"] or 0))
    for finding in findings:
        mark = "FAIL " if blocks(finding) else "     "
        print(f"{mark}{finding['severity']:<8} {finding['rule']:<40} {where(finding)}")
        print(f"         {finding['description'][:160]}")
    counts = Counter(f["severity"] for f in findings)
    print(
        f"\n{len(findings)} findings: "
        + ", ".join(f"{counts.get(name, 0)} {name}" for name in SEVERITIES)
    )
    if args.json:
        Path(args.json).write_text(json.dumps(findings, indent=1) + "\n", encoding="utf-8")
    failing = [f for f in findings if blocks(f)]
    if failing:
        print(
            f"audit: {len(failing)} CRITICAL/HIGH finding(s) outside scripts/ (marked FAIL)",
            file=sys.stderr,
        )
        return 1
    print("audit: no CRITICAL or HIGH finding outside scripts/ (other than .ci/run)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
