#!/usr/bin/env python3
"""`make bench`: the figures where speed and memory show, measured side by side in one run.

Everything runs on this machine over loopback against tests/fake_rebyte.py, started as a
separate process (its memory and CPU are not the client's). Each row has its goal (from
the issues "Proof under faults, bad input and load" and, for artifact downloads and Agent
Computers, issue 10) and PASS or FAIL; the notes under the table say how each figure was
taken.

    python tests/bench/run_bench.py [--markdown FILE]

Exit status: 0 once the table is printed, whether or not every goal was met (the table
says); 1 when a measurement itself broke (its row reads ERROR).
"""

from __future__ import annotations

import argparse
import datetime
import hashlib
import json
import math
import os
import platform
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import List, Optional
from urllib.parse import quote, urlsplit

ROOT = Path(__file__).resolve().parents[2]
CLI = ROOT / "scripts" / "rebyte_cli.py"
SERVER = ROOT / "tests" / "fake_rebyte.py"
LAUNCHER = Path(__file__).resolve().parent / "peak_rss.py"
PROBE = Path(__file__).resolve().parent / "startup_probe.py"
sys.path.insert(0, str(ROOT / "scripts"))
sys.path.insert(0, str(ROOT / "tests" / "demo"))

import rebyte_client as rc  # noqa: E402
from demo import lifecycle  # noqa: E402

PY = sys.executable
KEY = "rbk_bench_local_0123456789"
KIB, MIB, GIB = 1024, 1024**2, 1024**3
OCTETS = "application/octet-stream"
LOOPBACK = "127.0.0.1,127.0.0.2,localhost,::1"

UPLOAD_SIZE = GIB
UPLOAD_RUNS = 7  # per method, interleaved; the best run of each counts
DOWNLOAD_SIZE = GIB
DOWNLOAD_RUNS = 5  # per method, interleaved; the best run of each counts
WORKSPACE = "bench-workspace"  # where the server plants the artifacts (--plant-artifact)
BIG_ARTIFACT, SMALL_ARTIFACT = "big.bin", "small.bin"
FAN_OUT_TASKS = 20
FAN_OUT_CONCURRENCY = 10
PROVISION_DELAY = 1.0
COMPUTER_READY_DELAY = PROVISION_DELAY  # the same VM start, in the background
COMPUTER_RUNS = 3  # per path, interleaved; medians count
COMPUTER_POLL = 2.0  # the CLI's first pause between polls of a provisioning computer
START_UP_RUNS = 60  # per command, interleaved; medians count
START_UP_WARM_UPS = 2
WAIT_TASK_SECONDS = 600.0
WAIT_ROUND_TRIP = 0.1  # simulated seconds per GET
WAIT_KEEPALIVE = 15.0  # simulated seconds between keep-alive comments on the event stream
SEED_TASKS = 2000


class BenchError(Exception):
    """A measurement could not be taken (as opposed to a goal being missed)."""


@dataclass
class Row:
    measure: str
    figure: str
    against: str = ""
    ratio: str = ""
    goal: str = ""
    ok: Optional[bool] = None  # None: no goal (information only)
    error: bool = False


@dataclass
class Report:
    rows: List[Row] = field(default_factory=list)
    notes: List[str] = field(default_factory=list)
    broke: bool = False


# ------------------------------------------------------------------------ helpers


def env_for_cli(base_url: Optional[str] = None) -> dict:
    """The bench's environment without stray REBYTE_* or proxies for loopback."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("REBYTE_")}
    env["NO_PROXY"] = env["no_proxy"] = LOOPBACK
    env["REBYTE_API_KEY"] = KEY
    if base_url is not None:
        env["REBYTE_BASE_URL"] = base_url
    return env


def tail(text: str, lines: int = 3) -> str:
    return " | ".join((text or "").strip().splitlines()[-lines:])


def run_cli(args, env, *, timeout: float) -> subprocess.CompletedProcess:
    result = subprocess.run(
        [PY, str(CLI), *args], env=env, capture_output=True, text=True, timeout=timeout
    )
    if result.returncode != 0:
        raise cli_failed(args, result)
    return result


def cli_failed(args, result) -> BenchError:
    return BenchError(f"rebyte_cli.py {args[0]} exited {result.returncode}: {tail(result.stderr)}")


def mib(kib: int) -> str:
    return f"{kib / KIB:.1f} MiB"


def rate(seconds: float, size: int = UPLOAD_SIZE) -> str:
    return f"{size / MIB / seconds:,.0f} MiB/s"


class Server:
    """tests/fake_rebyte.py as a child process: base URL from its first stdout line."""

    def __init__(self, workdir: Path, name: str, *options: str) -> None:
        self._stderr = open(workdir / f"server-{name}.err", "w+", encoding="utf-8")
        self.proc = subprocess.Popen(
            [PY, str(SERVER), "--port", "0", "--key", KEY, *options],
            stdout=subprocess.PIPE,
            stderr=self._stderr,
            text=True,
            env=env_for_cli(),
        )
        first = []
        reader = threading.Thread(target=lambda: first.append(self.proc.stdout.readline()))
        reader.daemon = True
        reader.start()
        reader.join(30)
        line = first[0].strip() if first else ""
        if not line.startswith("http://"):
            self.stop()
            self._stderr.seek(0)
            raise BenchError(f"the local server did not start: {tail(self._stderr.read())}")
        self.base_url = line

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.proc.stdout.close()
        self._stderr.close()

    def __enter__(self) -> Server:
        return self

    def __exit__(self, *exc_info) -> None:
        self.stop()


# ------------------------------------------------------------- 1. memory of upload


def cli_peak_kib(args, env, workdir: Path, *, timeout: float) -> tuple:
    """(peak RSS in KiB, printed JSON) of one CLI run, from its rusage in
    tests/bench/peak_rss.py (see its docstring)."""
    out = workdir / "peak-rss.txt"
    if out.exists():
        out.unlink()
    result = subprocess.run(
        [PY, str(LAUNCHER), str(out), PY, str(CLI), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if result.returncode != 0:
        raise cli_failed(args, result)
    return int(out.read_text().strip()), json.loads(result.stdout)


def uploaded_peak_kib(args, env, workdir: Path, *, timeout: float) -> int:
    kib, printed = cli_peak_kib(args, env, workdir, timeout=timeout)
    if not printed.get("id"):
        raise BenchError(f"rebyte_cli.py {args[0]} printed no file id")
    return kib


def bench_memory(report: Report, server: Server, big: Path, small: Path, workdir: Path) -> None:
    env = env_for_cli(server.base_url)
    small_kib = uploaded_peak_kib(["upload", str(small)], env, workdir, timeout=60)
    big_kib = uploaded_peak_kib(["upload", str(big)], env, workdir, timeout=300)
    report.rows.append(
        Row(
            "peak RSS, `upload` of a 1 GiB file",
            mib(big_kib),
            f"`upload` of 1 KiB: {mib(small_kib)}",
            f"{big_kib / small_kib:.2f}x",
            "<= 64 MiB",
            big_kib <= 64 * KIB,
        )
    )
    report.notes.append(
        "RSS: ru_maxrss of the CLI process, which tests/bench/peak_rss.py starts and waits for "
        "(a small launcher, so the figure is not the benchmark's own); the server is another "
        "process. The 1 GiB file is "
        "sparse, so the figure is the client's buffers, not the page cache."
    )


# --------------------------------------------------------- 2. upload throughput


def new_upload_url(base_url: str, filename: str) -> str:
    """A fresh signed upload URL from POST /v1/files, made with plain requests.

    The URL is the server's, so it is checked to be a plain http(s) URL to a loopback host
    before curl is given it, and then only in a config file (write_curl_config)."""
    import requests

    answer = requests.post(
        base_url + "/files",
        json={"filename": filename, "contentType": OCTETS},
        headers={"API_KEY": KEY},
        timeout=30,
    )
    answer.raise_for_status()
    url = answer.json()["uploadUrl"]
    parts = urlsplit(url) if isinstance(url, str) else None
    if (
        parts is None
        or parts.scheme not in ("http", "https")
        or parts.hostname not in ("127.0.0.1", "127.0.0.2", "localhost", "::1")
        or re.search(r'[\s"\\\x00-\x1f\x7f]', url)
    ):
        raise BenchError(f"the local server gave an unexpected upload URL: {url!r:.200}")
    return url


def write_curl_config(path: Path, url: str, upload: Path) -> None:
    """curl's options for one upload, as a config file (`curl -K`): a signed upload URL is a
    credential, so it stays out of the process list, and a value there is never an option."""
    path.write_text(
        f'url = "{url}"\n'
        f'upload-file = "{upload}"\n'
        f'header = "Content-Type: {OCTETS}"\n'
        f'output = "{os.devnull}"\n'
        "silent\nshow-error\nfail\n",
        encoding="utf-8",
    )


def bench_throughput(report: Report, server: Server, big: Path, small: Path) -> None:
    curl = shutil.which("curl")
    client = rc.RebyteClient(KEY, base_url=server.base_url)
    env = env_for_cli(server.base_url)
    times = {"curl": [], "client": [], "cli": [], "cli 1 KiB": []}
    config = big.parent / "upload.curlrc"
    try:
        for _ in range(UPLOAD_RUNS):
            if curl:
                write_curl_config(config, new_upload_url(server.base_url, big.name), big)
                started = time.perf_counter()
                done = subprocess.run(
                    [curl, "--disable", "-K", str(config)],
                    capture_output=True,
                    text=True,
                    timeout=300,
                )
                times["curl"].append(time.perf_counter() - started)
                if done.returncode != 0:
                    raise BenchError(f"curl -T failed ({done.returncode}): {tail(done.stderr)}")
            started = time.perf_counter()
            client.files.upload(big, content_type=OCTETS)
            times["client"].append(time.perf_counter() - started)
            started = time.perf_counter()
            run_cli(["upload", str(big)], env, timeout=300)
            times["cli"].append(time.perf_counter() - started)
            started = time.perf_counter()
            run_cli(["upload", str(small)], env, timeout=60)
            times["cli 1 KiB"].append(time.perf_counter() - started)
    finally:
        client.close()
    best = {name: min(values) for name, values in times.items() if values}
    for name, label in (
        ("client", "upload 1 GiB: RebyteClient.files.upload"),
        ("cli", "upload 1 GiB: `rebyte_cli.py upload` (wall)"),
    ):
        if "curl" in best:
            ratio = best["curl"] / best[name]
            report.rows.append(
                Row(
                    label,
                    rate(best[name]),
                    f"curl -T: {rate(best['curl'])}",
                    f"{ratio:.2f}x",
                    ">= 0.8x curl",
                    ratio >= 0.8,
                )
            )
        else:
            report.rows.append(Row(label, rate(best[name]), "curl not installed", goal=">= 0.8x"))
    shown = "; ".join(
        f"{name} " + ", ".join(f"{t:.2f}" for t in values) for name, values in times.items()
    )
    report.notes.append(
        f"Upload: the same sparse 1 GiB file to the local upload host (127.0.0.2), {UPLOAD_RUNS} "
        "runs of each method interleaved, best run counted; each run has a fresh upload URL. "
        "upload_file is timed in-process (its POST /v1/files included); curl and the CLI are "
        "timed as processes, start-up included: the CLI starts Python and imports requests, "
        f"and its whole run for a 1 KiB file takes {best['cli 1 KiB']:.2f} s at best here. "
        f"Seconds per run: {shown}."
    )


# ------------------------------------------------------ 3. download of an artifact


def plant_options() -> List[str]:
    """The server options that plant the benchmark's two generated artifacts."""
    return [
        "--plant-artifact",
        f"{WORKSPACE}/{BIG_ARTIFACT}:{DOWNLOAD_SIZE}",
        "--plant-artifact",
        f"{WORKSPACE}/{SMALL_ARTIFACT}:{KIB}",
    ]


def downloaded(printed: dict, name: str, size: int) -> Path:
    """The local path the CLI printed for `name`, checked to hold `size` bytes."""
    files = printed.get("files") or []
    if len(files) != 1 or files[0].get("name") != name or files[0].get("bytes") != size:
        raise BenchError(f"artifacts download printed {json.dumps(printed)[:200]}")
    path = Path(files[0]["path"])
    if path.stat().st_size != size:
        raise BenchError(f"{path} holds {path.stat().st_size} bytes, not {size}")
    return path


def download_args(name: str, out_dir: Path) -> List[str]:
    return ["artifacts", "download", WORKSPACE, name, "--out", str(out_dir)]


def bench_download_memory(report: Report, server: Server, workdir: Path) -> None:
    env = env_for_cli(server.base_url)
    out_dir = workdir / "downloads"
    peaks = {}
    for name, size in ((SMALL_ARTIFACT, KIB), (BIG_ARTIFACT, DOWNLOAD_SIZE)):
        kib, printed = cli_peak_kib(download_args(name, out_dir), env, workdir, timeout=300)
        downloaded(printed, name, size).unlink()
        peaks[name] = kib
    big_kib, small_kib = peaks[BIG_ARTIFACT], peaks[SMALL_ARTIFACT]
    report.rows.append(
        Row(
            "peak RSS, `artifacts download` of a 1 GiB artifact",
            mib(big_kib),
            f"download of 1 KiB: {mib(small_kib)}",
            f"{big_kib / small_kib:.2f}x",
            "<= 64 MiB",
            big_kib <= 64 * KIB,
        )
    )
    report.notes.append(
        "Download RSS: as for upload, of `artifacts download` of a 1 GiB and of a 1 KiB "
        "artifact, each written to a file on disk (the page cache is the kernel's, not the "
        "process's)."
    )


def write_download_config(path: Path, url: str, output: Path) -> None:
    """curl's options for one download, as a config file: the API key stays out of the
    process list. The URL is built here from the server's base URL (checked by Server)."""
    path.write_text(
        f'url = "{url}"\n'
        f'header = "API_KEY: {KEY}"\n'
        f'output = "{output}"\n'
        "silent\nshow-error\nfail\n",
        encoding="utf-8",
    )


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(MIB), b""):
            digest.update(block)
    return digest.hexdigest()


def bench_download_throughput(report: Report, server: Server, workdir: Path) -> None:
    curl = shutil.which("curl")
    env = env_for_cli(server.base_url)
    client = rc.RebyteClient(KEY, base_url=server.base_url)
    out_dir = workdir / "downloads"
    out_dir.mkdir(exist_ok=True)
    url = f"{server.base_url}/workspaces/{quote(WORKSPACE, safe='')}/artifacts/{BIG_ARTIFACT}"
    config = workdir / "download.curlrc"
    by_curl = out_dir / "by-curl.bin"
    write_download_config(config, url, by_curl)
    hashes = {}

    def with_curl() -> Path:
        done = subprocess.run(
            [curl, "--disable", "-K", str(config)], capture_output=True, text=True, timeout=300
        )
        if done.returncode != 0:
            raise BenchError(f"curl -o failed ({done.returncode}): {tail(done.stderr)}")
        if by_curl.stat().st_size != DOWNLOAD_SIZE:
            raise BenchError(f"curl -o wrote {by_curl.stat().st_size} bytes")
        return by_curl

    def with_client() -> Path:
        got = client.artifacts.download(WORKSPACE, BIG_ARTIFACT, out_dir)
        if got["bytes"] != DOWNLOAD_SIZE:
            raise BenchError(f"download_artifact wrote {got['bytes']} bytes")
        return Path(got["path"])

    def with_cli() -> Path:
        result = run_cli(download_args(BIG_ARTIFACT, out_dir), env, timeout=300)
        return downloaded(json.loads(result.stdout), BIG_ARTIFACT, DOWNLOAD_SIZE)

    methods = {"client": with_client, "cli": with_cli}
    if curl:
        methods = {"curl": with_curl, **methods}
    times = {name: [] for name in methods}
    order = list(methods)
    try:
        for run in range(DOWNLOAD_RUNS):
            for name in order if run % 2 == 0 else reversed(order):  # ABC CBA: drift cancels
                started = time.perf_counter()
                path = methods[name]()
                times[name].append(time.perf_counter() - started)
                if run == 0 and name != "client":
                    hashes[name] = sha256_of(path)  # once: the CLI got the bytes curl got
                path.unlink()
    finally:
        client.close()
    if len(set(hashes.values())) > 1:
        raise BenchError("the CLI and curl downloaded different bytes")
    best = {name: min(values) for name, values in times.items()}
    for name, label in (
        ("client", "download 1 GiB: RebyteClient.artifacts.download"),
        ("cli", "download 1 GiB: `artifacts download` (wall)"),
    ):
        if "curl" in best:
            ratio = best["curl"] / best[name]
            report.rows.append(
                Row(
                    label,
                    rate(best[name], DOWNLOAD_SIZE),
                    f"curl -o: {rate(best['curl'], DOWNLOAD_SIZE)}",
                    f"{ratio:.2f}x",
                    ">= 0.8x curl",
                    ratio >= 0.8,
                )
            )
        else:
            report.rows.append(
                Row(label, rate(best[name], DOWNLOAD_SIZE), "curl not installed", goal=">= 0.8x")
            )
    shown = "; ".join(
        f"{name} " + ", ".join(f"{t:.2f}" for t in values) for name, values in times.items()
    )
    report.notes.append(
        f"Download: a {DOWNLOAD_SIZE // MIB:,} MiB artifact the server generates as it sends "
        f"(planted with --plant-artifact), answered directly by the API (no storage redirect), "
        f"written to a file on this machine's disk and deleted after each run; "
        f"{DOWNLOAD_RUNS} runs of each method interleaved (ABC CBA), best run counted. curl "
        "fetches the same URL with the API_KEY header (`curl -o FILE`); download_artifact is "
        "timed in-process; curl and the CLI are timed as processes, start-up included (the "
        "CLI's also asks GET /v1/tasks/ID first, to tell a task id from a workspace id). "
        "The first run's CLI and curl files have the same SHA-256. "
        f"Seconds per run: {shown}."
    )


# ---------------------------------------------------------------- 4. fan-out


def bench_fan_out(report: Report, server: Server, workdir: Path) -> None:
    spec = workdir / "batch.jsonl"
    spec.write_text(
        "".join(
            json.dumps({"prompt": f"bench fan-out task {n}"}) + "\n" for n in range(FAN_OUT_TASKS)
        ),
        encoding="utf-8",
    )
    env = env_for_cli(server.base_url)
    started = time.perf_counter()
    result = run_cli(
        ["batch", str(spec), "--concurrency", str(FAN_OUT_CONCURRENCY), "--no-progress"],
        env,
        timeout=120,
    )
    batch_seconds = time.perf_counter() - started
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    created = [line for line in lines if line.get("stage") == "created"]
    if len(created) != FAN_OUT_TASKS:
        raise BenchError(f"batch created {len(created)} of {FAN_OUT_TASKS} tasks")

    with rc.RebyteClient(KEY, base_url=server.base_url) as client:
        started = time.perf_counter()
        for n in range(FAN_OUT_TASKS):
            client.tasks.create(f"bench sequential task {n}")
        sequential_seconds = time.perf_counter() - started
    speed_up = sequential_seconds / batch_seconds
    report.rows.append(
        Row(
            f"{FAN_OUT_TASKS} tasks, `batch --concurrency {FAN_OUT_CONCURRENCY}`",
            f"{batch_seconds:.2f} s",
            f"one after another: {sequential_seconds:.2f} s",
            f"{speed_up:.1f}x faster",
            ">= 6x faster",
            speed_up >= 6,
        )
    )
    report.notes.append(
        f"Fan-out: the server takes {PROVISION_DELAY:g} s to provision each task. The batch is "
        "timed as a CLI process (start-up included); one after another is "
        f"{FAN_OUT_TASKS} x RebyteClient.tasks.create in a loop, in-process. The floor for the "
        f"batch is {math.ceil(FAN_OUT_TASKS / FAN_OUT_CONCURRENCY)} provisioning rounds."
    )


# -------------------------------------------------------- 5. Agent Computers


ID_PATTERN = re.compile(r"[A-Za-z0-9_-]{1,100}")


def created_task(result: subprocess.CompletedProcess, computer_id: Optional[str]) -> dict:
    """The task `create` printed, checked to be in the computer (when one is named)."""
    task = json.loads(result.stdout)
    if not task.get("id") or (computer_id and task.get("workspaceId") != computer_id):
        raise BenchError(f"create printed {result.stdout[:200]!r}")
    return task


def bench_computers(report: Report, server: Server) -> None:
    env = env_for_cli(server.base_url)
    prompt = ["--prompt", "bench: a task"]

    def create_alone() -> None:
        created_task(run_cli(["create", *prompt], env, timeout=60), None)

    def computer_then_create() -> None:
        made = run_cli(["computer", "create", "--wait", "-q"], env, timeout=60)
        computer_id = made.stdout.strip()
        if not ID_PATTERN.fullmatch(computer_id):
            raise BenchError(f"computer create --wait -q printed {made.stdout[:200]!r}")
        ready.append(computer_id)
        created_task(
            run_cli(["create", "--computer", computer_id, *prompt], env, timeout=60), computer_id
        )

    def new_computer() -> None:
        result = run_cli(["create", "--new-computer", *prompt], env, timeout=60)
        said = re.search(r"computer (\S+) created", result.stderr)
        if said is None:
            raise BenchError(f"create --new-computer named no computer: {tail(result.stderr)}")
        created_task(result, said.group(1))

    def in_ready_computer() -> None:
        created_task(
            run_cli(["create", "--computer", ready[-1], *prompt], env, timeout=60), ready[-1]
        )

    ready: List[str] = []
    paths = {
        "create": create_alone,
        "computer": computer_then_create,
        "new": new_computer,
        "reuse": in_ready_computer,
    }
    times = {name: [] for name in paths}
    order = list(paths)
    for run in range(COMPUTER_RUNS):
        for name in order if run % 2 == 0 else ("new", "computer", "create", "reuse"):
            started = time.perf_counter()
            paths[name]()
            times[name].append(time.perf_counter() - started)
    median = {name: statistics.median(values) for name, values in times.items()}
    alone = f"`create` alone: {median['create']:.2f} s"
    for name, label in (
        ("computer", "new computer to a task in it: `computer create --wait`, `create --computer`"),
        ("new", "new computer to a task in it: `create --new-computer`"),
    ):
        report.rows.append(
            Row(
                label,
                f"{median[name]:.2f} s",
                alone,
                f"{median[name] / median['create']:.2f}x",
                f"<= `create` + {COMPUTER_POLL:g} s",
                median[name] <= median["create"] + COMPUTER_POLL,
            )
        )
    ratio = median["reuse"] / median["create"]
    report.rows.append(
        Row(
            "a further task in the ready computer: `create --computer ID`",
            f"{median['reuse']:.2f} s",
            alone,
            f"{ratio:.2f}x",
            "<= 0.5x (no provisioning)",
            ratio <= 0.5,
        )
    )
    shown = "; ".join(
        f"{name} " + ", ".join(f"{t:.2f}" for t in values) for name, values in times.items()
    )
    report.notes.append(
        f"Agent Computers: the server takes {PROVISION_DELAY:g} s to provision a task's VM "
        f"(POST /v1/tasks blocks) and {COMPUTER_READY_DELAY:g} s for a computer to become ready "
        "(in the background: POST /v1/agent-computers answers at once). Each path is timed as "
        "CLI processes from the first command's start until `create` has printed a task "
        "created in the computer (its workspaceId checked): `computer create --wait -q` then "
        "`create --computer ID` is two processes; `create --new-computer` is one. The CLI "
        f"polls a provisioning computer at once, then after {COMPUTER_POLL:g} s (growing x1.5), "
        f"so the goal allows {COMPUTER_POLL:g} s over `create` alone. {COMPUTER_RUNS} runs "
        f"of each path, interleaved, medians. Seconds per run: {shown}."
    )


# ------------------------------------------------ 5b. the local repository round trip


ROUND_TRIP_FILES = 5000
ROUND_TRIP_BYTES = 200 * MIB
ROUND_TRIP_RUNS = 3  # per method, interleaved; the best run of each counts


def make_bench_repo(root: Path) -> Path:
    """A repository of ROUND_TRIP_FILES files, ROUND_TRIP_BYTES in all (random bytes, so
    that compression does not hide the size), committed, with one uncommitted edit."""
    repo = root / "bench-repo"
    repo.mkdir()
    size = ROUND_TRIP_BYTES // ROUND_TRIP_FILES
    for n in range(ROUND_TRIP_FILES):
        folder = repo / f"pkg{n % 50:02d}"
        folder.mkdir(exist_ok=True)
        (folder / f"file{n:05d}.bin").write_bytes(os.urandom(size))
    git = ["git", "-C", str(repo), "-c", "user.name=bench", "-c", "user.email=bench@local"]
    for args in (["init", "-q", "-b", "main"], ["add", "-A"], ["commit", "-q", "-m", "bench"]):
        subprocess.run([*git, *args], check=True, capture_output=True, timeout=600)
    (repo / "pkg00" / "file00000.bin").write_bytes(os.urandom(size))  # work in progress
    return repo


def bench_round_trip(report: Report, server: Server, workdir: Path) -> None:
    curl = shutil.which("curl")
    env = env_for_cli(server.base_url)
    env["XDG_STATE_HOME"] = str(workdir / "state")  # the bundles it keeps, not the user's
    repo = make_bench_repo(workdir)
    made = run_cli(["computer", "create", "--wait", "-q"], env, timeout=120)
    computer = made.stdout.strip()
    args = ["create", "--local-repo", str(repo), "--computer", computer, "--prompt", "bench"]
    bundle, config = workdir / "plain.bundle", workdir / "bundle.curlrc"
    times = {"cli": [], "git+curl": []}
    peak = 0
    for _ in range(ROUND_TRIP_RUNS):
        started = time.perf_counter()
        kib, printed = cli_peak_kib(args, env, workdir, timeout=600)
        times["cli"].append(time.perf_counter() - started)
        peak = max(peak, kib)
        if not printed.get("snapshot"):
            raise BenchError(f"create --local-repo printed {json.dumps(printed)[:200]}")
        if curl:
            started = time.perf_counter()
            subprocess.run(
                ["git", "-C", str(repo), "bundle", "create", "-q", str(bundle), "--all"],
                check=True,
                capture_output=True,
                timeout=600,
            )
            write_curl_config(config, new_upload_url(server.base_url, bundle.name), bundle)
            done = subprocess.run(
                [curl, "--disable", "-K", str(config)], capture_output=True, text=True, timeout=600
            )
            times["git+curl"].append(time.perf_counter() - started)
            if done.returncode != 0:
                raise BenchError(f"curl -T failed ({done.returncode}): {tail(done.stderr)}")
    best = {name: min(values) for name, values in times.items() if values}
    label = "round trip: snapshot + upload of 5,000 files, 200 MiB (`create --local-repo`)"
    if "git+curl" in best:
        ratio = best["git+curl"] / best["cli"]
        report.rows.append(
            Row(
                label,
                f"{best['cli']:.2f} s",
                f"git bundle + curl -T: {best['git+curl']:.2f} s",
                f"{ratio:.2f}x",
                ">= 0.67x",
                ratio >= 0.67,
            )
        )
    else:
        report.rows.append(Row(label, f"{best['cli']:.2f} s", "curl not installed"))
    report.rows.append(
        Row(
            "peak RSS, `create --local-repo` of that repository",
            mib(peak),
            goal="<= 64 MiB",
            ok=peak <= 64 * KIB,
        )
    )
    shown = "; ".join(
        f"{name} " + ", ".join(f"{t:.2f}" for t in values) for name, values in times.items()
    )
    report.notes.append(
        f"Round trip: a repository of {ROUND_TRIP_FILES:,} random files, "
        f"{ROUND_TRIP_BYTES // MIB} MiB committed, plus one uncommitted edit. `create "
        "--local-repo` (a snapshot commit in a scratch index and object store, `git bundle "
        "create` of it, its upload, the create in a ready Agent Computer) is timed as a process "
        "against `git bundle create --all` of the same repository plus `curl -T` of that "
        "bundle to a fresh upload URL; the goal (at most 1.5 times as long) is our own. "
        f"{ROUND_TRIP_RUNS} runs of each, interleaved, best counted. The RSS is the CLI's "
        "(ru_maxrss from peak_rss.py), git's children included as the kernel counts them. "
        f"Seconds per run: {shown}."
    )


# ---------------------------------------------------------------- 6. start-up


def imported_modules(args, env) -> List[str]:
    """Modules a fresh interpreter imports for these arguments, from -X importtime."""
    result = subprocess.run(
        [PY, "-X", "importtime", *args], env=env, capture_output=True, text=True, timeout=60
    )
    names = []
    for line in result.stderr.splitlines():
        if line.startswith("import time:") and "|" in line:
            name = line.rsplit("|", 1)[1].strip()
            if name != "package":
                names.append(name)
    if not names:
        raise BenchError(f"no -X importtime output for {args}: {tail(result.stderr)}")
    return names


def bench_start_up(report: Report) -> None:
    env = env_for_cli()
    # Python's default is to cache bytecode; some environments switch it off. A script run
    # as __main__ is compiled on every run either way; this only matters for modules.
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    commands = {
        "help": [PY, str(CLI), "--help"],
        "base": [PY, "-c", "import argparse, json"],
        "floor": [PY, "-c", "import argparse, json; argparse.ArgumentParser().print_help()"],
    }

    def timed(command) -> tuple:
        """(wall seconds, CPU seconds) of one run; CPU time from the child's own rusage."""
        started = time.perf_counter()
        child = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL)
        watchdog = threading.Timer(30, child.kill)
        watchdog.start()
        try:
            _, status, usage = os.wait4(child.pid, 0)
        finally:
            watchdog.cancel()
        wall = time.perf_counter() - started
        child.returncode = os.waitstatus_to_exitcode(status)
        if child.returncode != 0:
            raise BenchError(f"{command[1:]} exited {child.returncode}")
        return wall, usage.ru_utime + usage.ru_stime

    for command in commands.values():
        for _ in range(START_UP_WARM_UPS):
            timed(command)
    walls = {name: [] for name in commands}
    cpus = {name: [] for name in commands}
    order = list(commands)
    for run in range(START_UP_RUNS):
        for name in order if run % 2 == 0 else reversed(order):  # ABC CBA: drift cancels
            wall, cpu = timed(commands[name])
            walls[name].append(wall)
            cpus[name].append(cpu)
    median = {name: statistics.median(values) for name, values in walls.items()}
    cpu = {name: statistics.median(values) for name, values in cpus.items()}
    ratio = median["help"] / median["base"]
    report.rows.append(
        Row(
            "start-up: `rebyte_cli.py --help`",
            f"{median['help'] * 1000:.1f} ms",
            f"`import argparse, json`: {median['base'] * 1000:.1f} ms",
            f"{ratio:.2f}x",
            "<= 1.2x",
            ratio <= 1.2,
        )
    )

    help_modules = imported_modules(commands["help"][1:], env)
    base_modules = set(imported_modules(commands["base"][1:], env))
    heavy = sorted(
        {m for m in help_modules if m.split(".")[0] in ("requests", "urllib3", "rebyte_client")}
    )
    report.rows.append(
        Row(
            "start-up: `requests` imported by --help",
            "yes: " + ", ".join(heavy[:3]) if heavy else "no",
            goal="no",
            ok=not heavy,
        )
    )
    extra = [m for m in dict.fromkeys(help_modules) if m not in base_modules]

    probes = []
    for _ in range(5):
        result = subprocess.run(
            [PY, str(PROBE), str(CLI.parent)], env=env, capture_output=True, text=True, timeout=30
        )
        if result.returncode != 0:
            raise BenchError(f"start-up probe failed: {tail(result.stderr)}")
        probes.append(json.loads(result.stdout))
    parts = {
        key: statistics.median(p[key] for p in probes) * 1000
        for key in ("top level", "build_parser", "format_help")
    }
    floor_ratio = median["floor"] / median["base"]
    launcher_lines = CLI.read_text(encoding="utf-8").count("\n")
    cpu_line = ", ".join(f"{name} {cpu[name] * 1000:.1f} ms" for name in commands)
    report.notes.append(
        f"Start-up: {START_UP_RUNS} runs of each command, interleaved, medians; the same "
        f"interpreter ({PY}). --help imports, beyond `import argparse, json`: "
        f"{', '.join(extra) or 'nothing'}. "
        f"Where the extra time goes (medians of 5 fresh processes, tests/bench/startup_probe.py): "
        f"importing the {launcher_lines:,}-line launcher (run as __main__ it is compiled on "
        f"every run, so it stays small) with its top level, which imports rebyte.cli.app "
        f"from cached bytecode, {parts['top level']:.1f} ms, "
        f"build_parser() {parts['build_parser']:.1f} ms, "
        f"format_help() {parts['format_help']:.1f} ms. For scale: a one-parser argparse "
        f"program printing its help takes {median['floor'] * 1000:.1f} ms, {floor_ratio:.2f}x. "
        f"Median CPU time (user + system; steadier than wall time on a busy machine): "
        f"{cpu_line}; --help {cpu['help'] / cpu['base']:.2f}x the baseline, the one-parser "
        f"program {cpu['floor'] / cpu['base']:.2f}x."
    )


# ---------------------------------------------------------------- 7. waiting


class SimulatedClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def time(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += max(0.0, seconds)


class SimulatedResponse:
    status_code = 200

    def __init__(self, body: dict) -> None:
        self._body = body
        self.content = json.dumps(body).encode()
        self.headers = {"Content-Type": "application/json"}

    def json(self) -> dict:
        return self._body

    def iter_content(self, chunk_size: int = 1):
        yield self.content  # every answer is streamed and read whole by the client

    def close(self) -> None:
        pass


class SimulatedStream:
    """An event stream on the simulated clock: keep-alives until the task ends, then done."""

    status_code = 200
    headers = {"Content-Type": "text/event-stream"}
    raw = None  # no socket: the client reads it through iter_content

    def __init__(self, host: SimulatedTaskHost) -> None:
        self._host = host

    def __enter__(self) -> SimulatedStream:
        return self

    def __exit__(self, *exc_info) -> None:
        pass

    def close(self) -> None:
        pass

    def iter_content(self, chunk_size: int = 1):
        clock, ends_at = self._host.clock, self._host.ends_at
        while clock.now < ends_at:
            clock.now = min(ends_at, clock.now + WAIT_KEEPALIVE)
            yield b": keep-alive\n\n"
        clock.now += WAIT_ROUND_TRIP / 2  # the last bytes on their way
        done = {"status": "completed", "lastSeq": 0, "finalResult": "done"}
        event = {"seq": 0, "eventType": "result", "eventKey": "k0", "payload": {}}
        yield f"event: event\ndata: {json.dumps(event)}\n\n".encode()
        yield f"event: done\ndata: {json.dumps(done)}\n\n".encode()


class SimulatedTaskHost:
    """Stands in for the client's requests.Session on a simulated clock: GET /tasks/{id},
    and GET /tasks/{id}/events as a stream that lasts until the task ends."""

    def __init__(self, clock: SimulatedClock, runs_for: float) -> None:
        self.clock = clock
        self.ends_at = clock.now + runs_for
        self.gets = 0

    def get(self, url: str, **kwargs) -> SimulatedStream:
        if not url.endswith("/events") or not kwargs.get("stream"):
            raise BenchError(f"unexpected request while waiting: GET {url}")
        self.gets += 1
        self.clock.now += WAIT_ROUND_TRIP / 2
        return SimulatedStream(self)

    def request(self, method: str, url: str, **kwargs):
        if method == "GET" and url.endswith("/events"):
            return self.get(url, **kwargs)
        if method != "GET" or "/tasks/" not in url:
            raise BenchError(f"unexpected request while waiting: {method} {url}")
        self.gets += 1
        self.clock.now += WAIT_ROUND_TRIP
        done = self.clock.now >= self.ends_at
        prompt = {"id": "prompt-1", "status": "succeeded" if done else "running"}
        status = "completed" if done else "running"
        return SimulatedResponse({"id": "task-1", "status": status, "prompts": [prompt]})

    def close(self) -> None:
        pass


def simulate_wait(runs_for: float, *, use_events: bool) -> tuple:
    """(GETs, detection lag in seconds) of wait_for_task with its default settings."""
    clock = SimulatedClock()
    host = SimulatedTaskHost(clock, runs_for)
    client = rc.RebyteClient(KEY, base_url="http://127.0.0.1:9/v1")
    client.close()
    client._session, client._clock, client._sleep = host, clock.time, clock.sleep
    task = client.tasks.wait("task-1", use_events=use_events)
    if task.get("status") != "completed":
        raise BenchError(f"the simulated wait ended with {task.get('status')}")
    return host.gets, clock.now - host.ends_at


def bench_waiting(report: Report) -> None:
    gets, lag = simulate_wait(WAIT_TASK_SECONDS, use_events=True)
    polled_gets, polled_lag = simulate_wait(WAIT_TASK_SECONDS, use_events=False)
    sweep = [simulate_wait(float(seconds), use_events=True) for seconds in range(5, 601, 5)]
    worst_lag = max(lag for _, lag in sweep)
    report.rows.append(
        Row(
            "wait out a 10-minute task: GETs",
            f"{gets}",
            f"polling alone: {polled_gets}",
            f"{gets / polled_gets:.2f}x",
            "<= 60",
            gets <= 60,
        )
    )
    report.rows.append(
        Row(
            "wait out a 10-minute task: detection lag",
            f"{lag:.1f} s",
            f"polling alone: {polled_lag:.1f} s; worst of 5-600 s tasks: {worst_lag:.1f} s",
            goal="<= 10 s",
            ok=lag <= 10 and worst_lag <= 10,
        )
    )
    floor = math.ceil(WAIT_TASK_SECONDS / 10) + 1
    report.notes.append(
        "Waiting: RebyteClient.tasks.wait with its defaults and use_events=True, as the CLI "
        "waits (one poll, then the task's event stream until `done`, then one poll), on a "
        f"simulated clock: its session is a stub whose task runs {WAIT_TASK_SECONDS:g} s, each "
        f"request taking {WAIT_ROUND_TRIP:g} simulated s, the stream sending a keep-alive every "
        f"{WAIT_KEEPALIVE:g} s; the event stream counts as one GET; lag = detection time - end "
        "time. 'Polling alone' is the same wait without the stream (poll 2 s, x1.5, at most "
        "10 s), what the client falls back to where the stream fails: a lag under 10 s needs "
        f"polls at most 10 s apart, so at least {floor} GETs for a {WAIT_TASK_SECONDS:g} s task."
    )


# ---------------------------------------------------------------- 8. list --all


def bench_list_all(report: Report, workdir: Path) -> None:
    log = workdir / "list-requests.jsonl"
    with Server(workdir, "list", "--seed-tasks", str(SEED_TASKS), "--log", str(log)) as server:
        started = time.perf_counter()
        result = run_cli(
            ["list", "--all", "--no-status"], env_for_cli(server.base_url), timeout=120
        )
        seconds = time.perf_counter() - started
    # The server has stopped, so every request it answered is in the log.
    listed = json.loads(result.stdout)["data"]
    if len(listed) != SEED_TASKS:
        raise BenchError(f"list --all printed {len(listed)} of {SEED_TASKS} tasks")
    entries = [json.loads(line) for line in log.read_text(encoding="utf-8").splitlines()]
    pages = [
        e
        for e in entries
        if e.get("listener") == "api" and e.get("method") == "GET" and e.get("path") == "/v1/tasks"
    ]
    connections = {e.get("connection") for e in pages}
    page_count = math.ceil(SEED_TASKS / rc.MAX_PAGE_SIZE)
    report.rows.append(
        Row(
            f"`list --all --no-status` over {SEED_TASKS:,} tasks",
            f"{len(pages)} GETs, {len(connections)} conn.",
            f"{page_count} pages; {seconds:.2f} s",
            f"{len(pages) / page_count:.2f}x pages",
            "1 conn., GETs = pages",
            len(connections) == 1 and len(pages) == page_count,
        )
    )
    report.notes.append(
        "list --all --no-status: the CLI as a process against a server seeded with completed "
        "tasks; GETs and TCP connections counted from the server's request log (--log), each "
        "request tagged with its connection's id."
    )


def bench_list_statuses(report: Report, workdir: Path) -> None:
    log = workdir / "list-status-requests.jsonl"
    with Server(workdir, "statuses", "--seed-tasks", str(SEED_TASKS), "--log", str(log)) as server:
        started = time.perf_counter()
        result = run_cli(["list", "--all"], env_for_cli(server.base_url), timeout=300)
        seconds = time.perf_counter() - started
    listed = json.loads(result.stdout)["data"]
    if len(listed) != SEED_TASKS or not all(task.get("status") for task in listed):
        raise BenchError(f"list --all printed {len(listed)} of {SEED_TASKS} tasks with statuses")
    entries = [json.loads(line) for line in log.read_text(encoding="utf-8").splitlines()]
    gets = [
        e
        for e in entries
        if e.get("listener") == "api"
        and e.get("method") == "GET"
        and re.fullmatch(r"/v1/tasks(/[^/]+)?", e.get("path", ""))
    ]
    pages = [e for e in gets if e["path"] == "/v1/tasks"]
    connections = {e.get("connection") for e in gets}
    expected = math.ceil(SEED_TASKS / rc.MAX_PAGE_SIZE) + SEED_TASKS
    report.rows.append(
        Row(
            f"`list --all` with statuses, {SEED_TASKS:,} tasks",
            f"{len(gets):,} GETs, {len(connections)} conn.",
            f"{len(pages)} pages + a GET per task; {seconds:.2f} s",
            f"{len(gets) / expected:.2f}x",
            "GETs = pages + tasks, <= 9 conn.",
            len(gets) == expected and len(connections) <= 9,
        )
    )
    report.notes.append(
        "list --all with statuses: the same, without --no-status: the API's list entries carry "
        "no status, so the CLI fetches each task, 8 at a time on its connection pool (a ninth "
        "connection may serve the pages)."
    )


def demo_stdout_bytes(cli: Path, workdir: Path) -> tuple:
    """(bytes, lines) the CLI at `cli` prints on stdout over the demo's lifecycle."""
    printed = [0, 0]
    with Server(workdir, "demo", "--prompt-duration", "0.3") as server:
        env = env_for_cli(server.base_url)

        def step(title: str, *args: str) -> dict:
            result = subprocess.run(
                [PY, str(cli), *args], env=env, capture_output=True, text=True, timeout=120
            )
            if result.returncode != 0:
                raise cli_failed(args, result)
            printed[0] += len(result.stdout.encode("utf-8"))
            printed[1] += result.stdout.count("\n")
            return json.loads(result.stdout) if result.stdout.strip() else {}

        folder = workdir / "demo"
        folder.mkdir(exist_ok=True)
        lifecycle(step, folder, say=lambda text: None)
    return printed[0], printed[1]


def bench_demo_output(report: Report, workdir: Path) -> None:
    size, lines = demo_stdout_bytes(CLI, workdir)
    report.rows.append(
        Row(
            "stdout of the demo's lifecycle (7 commands)",
            f"{size:,} bytes, {lines} lines",
            "before issue 11: see README",
            "",
            "",
            None,
        )
    )
    report.notes.append(
        "demo stdout: the bytes an agent reads from stdout over tests/demo/demo.py's steps "
        "(upload, create, wait, follow-up --wait, share, list, delete), the same steps run "
        "against a fresh local server; `python tests/bench/run_bench.py --demo-bytes CLI` "
        "measures another checkout's CLI the same way."
    )


# ---------------------------------------------------------------- the report


def machine_line() -> str:
    curl = shutil.which("curl")
    curl_version = "not installed"
    if curl:
        out = subprocess.run([curl, "--version"], capture_output=True, text=True, timeout=10)
        curl_version = (out.stdout.split() or ["?", "?"])[1]
    import requests

    return (
        f"machine: {os.cpu_count()} CPUs, {platform.platform()}; Python "
        f"{platform.python_version()} ({platform.python_implementation()}); requests "
        f"{requests.__version__}; curl {curl_version}"
    )


COLUMNS = ("#", "measure", "figure", "compared with", "ratio", "goal", "result")


def cells(rows: List[Row]) -> List[tuple]:
    table = []
    for number, row in enumerate(rows, 1):
        result = "ERROR" if row.error else {True: "PASS", False: "FAIL", None: "-"}[row.ok]
        table.append(
            (str(number), row.measure, row.figure, row.against, row.ratio, row.goal, result)
        )
    return table


def text_table(rows: List[Row]) -> str:
    table = [COLUMNS, *cells(rows)]
    widths = [max(len(line[i]) for line in table) for i in range(len(COLUMNS))]
    lines = [
        "  ".join(cell.ljust(width) for cell, width in zip(line, widths)).rstrip() for line in table
    ]
    lines.insert(1, "  ".join("-" * width for width in widths))
    return "\n".join(lines)


def markdown_table(rows: List[Row]) -> str:
    def escape(text: str) -> str:
        return text.replace("|", "\\|")

    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    lines += ["| " + " | ".join(escape(c) for c in line) + " |" for line in cells(rows)]
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--markdown", metavar="FILE", help="also write the table as Markdown")
    parser.add_argument(
        "--demo-bytes",
        metavar="CLI",
        help="only print the stdout bytes of the demo's lifecycle run with this rebyte_cli.py",
    )
    args = parser.parse_args(argv)
    os.environ["NO_PROXY"] = os.environ["no_proxy"] = LOOPBACK  # the in-process client too
    if args.demo_bytes:
        with tempfile.TemporaryDirectory(prefix="rebyte-bench-") as scratch:
            size, lines = demo_stdout_bytes(Path(args.demo_bytes), Path(scratch))
        print(f"{size} bytes, {lines} lines on stdout")
        return 0

    began = time.monotonic()
    when = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    header = [f"Rebyte skill benchmarks, {when}", machine_line()]
    print("\n".join(header), flush=True)
    report = Report()

    def measure(name: str, step, *step_args) -> None:
        print(f"  measuring: {name} ...", file=sys.stderr, flush=True)
        before = len(report.rows)
        try:
            step(report, *step_args)
        except Exception as error:  # one broken measurement must not hide the others
            del report.rows[before:]
            report.rows.append(Row(name, f"{type(error).__name__}: {error}"[:120], error=True))
            report.broke = True

    with tempfile.TemporaryDirectory(prefix="rebyte-bench-") as scratch:
        workdir = Path(scratch)
        big, small = workdir / "big.bin", workdir / "small.bin"
        try:
            with open(big, "wb") as handle:
                handle.truncate(UPLOAD_SIZE)  # sparse: no disk blocks, reads are zeros
            small.write_bytes(b"x" * KIB)
            options = [
                "--provision-delay",
                str(PROVISION_DELAY),
                "--computer-ready-delay",
                str(COMPUTER_READY_DELAY),
                *plant_options(),
            ]
            with Server(workdir, "main", *options) as server:
                measure("peak RSS of upload", bench_memory, server, big, small, workdir)
                measure("upload throughput", bench_throughput, server, big, small)
                big.unlink()
                measure("peak RSS of download", bench_download_memory, server, workdir)
                measure("download throughput", bench_download_throughput, server, workdir)
                measure("fan-out", bench_fan_out, server, workdir)
                measure("Agent Computers", bench_computers, server)
                measure("round trip", bench_round_trip, server, workdir)
        except BenchError as error:
            report.rows.append(Row("local server", str(error), error=True))
            report.broke = True
        finally:
            if big.exists():
                big.unlink()
        measure("start-up", bench_start_up)
        measure("waiting", bench_waiting)
        measure("list --all", bench_list_all, workdir)
        measure("list --all with statuses", bench_list_statuses, workdir)
        measure("demo stdout", bench_demo_output, workdir)

    print()
    print(text_table(report.rows))
    print()
    for note in report.notes:
        print(f"- {note}")
    missed = sum(1 for row in report.rows if row.ok is False)
    errors = sum(1 for row in report.rows if row.error)
    print(
        f"\n{len(report.rows)} rows: {missed} goal(s) missed, {errors} error(s); "
        f"{time.monotonic() - began:.0f} s in all."
    )
    if args.markdown:
        Path(args.markdown).write_text(
            "\n".join(header) + "\n\n" + markdown_table(report.rows) + "\n", encoding="utf-8"
        )
    return 1 if report.broke else 0


if __name__ == "__main__":
    sys.exit(main())
