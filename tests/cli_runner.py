"""Run scripts/rebyte_cli.py as a subprocess, the way an agent or a person does."""

from __future__ import annotations

import atexit
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional, Sequence

from cli_forkserver import ForkServer

ROOT = Path(__file__).resolve().parent.parent
CLI = ROOT / "scripts" / "rebyte_cli.py"
# Set by tests/conftest.py for the session: a folder (outside the checkout) where every CLI
# run keeps and finds its compiled modules, so that a run does not compile the client again.
PYCACHE_VARIABLE = "SKILL_TESTS_PYCACHE"
# SKILL_TESTS_FORKSERVER=0: every CLI run in an interpreter of its own (slower, for checking).
FORK_SERVER_VARIABLE = "SKILL_TESTS_FORKSERVER"
# What a CLI run imports: compiled once into that folder before the first test, and imported
# by each test process's fork server before it forks its first run.
WARM_UP = (
    "rebyte_cli rebyte_client rebyte.cli.app rebyte.cli.create rebyte.cli.tasks rebyte.cli.batch "
    "rebyte.cli.artifacts rebyte.cli.computer rebyte.cli.webhook rebyte.record "
    "requests urllib3.filepost http.cookiejar email.utils mimetypes "
    "hashlib ipaddress queue unicodedata shutil signal ssl traceback yaml"
).split()
_WARM_UP_SCRIPT = (
    "import importlib, sys\n"
    "sys.path.insert(0, sys.argv[1])\n"
    "for name in sys.argv[2:]:\n"
    "    try:\n"
    "        importlib.import_module(name)\n"
    "    except ImportError:\n"
    "        pass\n"
)


@dataclass
class CliResult:
    args: Sequence[str]
    returncode: int
    stdout: str
    stderr: str

    def json(self):
        """stdout as one JSON document (fails the test if it is not)."""
        try:
            return json.loads(self.stdout)
        except ValueError as error:
            raise AssertionError(f"stdout is not JSON: {self.stdout!r} ({error})") from None

    def json_lines(self) -> list:
        return [json.loads(line) for line in self.stdout.splitlines() if line.strip()]

    @property
    def stderr_lines(self) -> list:
        return [line for line in self.stderr.splitlines() if line.strip()]


def cli_env(base_url: Optional[str], api_key: Optional[str], **extra: str) -> Dict[str, str]:
    """A clean environment: no stray REBYTE_* from the machine, no proxies for loopback."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("REBYTE_")}
    env.pop("NO_COLOR", None)
    pycache = os.environ.get(PYCACHE_VARIABLE)
    if pycache:  # the session's compiled modules (PYTHONDONTWRITEBYTECODE would forbid them)
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        env["PYTHONPYCACHEPREFIX"] = pycache
    env["NO_PROXY"] = env["no_proxy"] = "127.0.0.1,127.0.0.2,localhost,::1"
    if base_url is not None:
        env["REBYTE_BASE_URL"] = base_url
    if api_key is not None:
        env["REBYTE_API_KEY"] = api_key
    env.update(extra)
    return env


def warm_bytecode_cache(folder: str) -> None:
    """Compile what a CLI run imports into `folder` (a PYTHONPYCACHEPREFIX), once."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["PYTHONPYCACHEPREFIX"] = folder
    subprocess.run(
        [sys.executable, "-c", _WARM_UP_SCRIPT, str(CLI.parent), *WARM_UP],
        env=env, capture_output=True, timeout=120, check=False,
    )


def as_documented(text: str) -> str:
    """Help and hints name the CLI as it was run (`python3 /abs/.../scripts/rebyte_cli.py`,
    as run_cli runs it); the command table writes `python3 scripts/rebyte_cli.py`."""
    return text.replace(f"python3 {CLI}", "python3 scripts/rebyte_cli.py")


def run_cli(
    *args: str,
    base_url: Optional[str] = None,
    api_key: Optional[str] = None,
    env: Optional[Dict[str, str]] = None,
    stdin: Optional[str] = None,
    timeout: float = 60,
    cwd: Optional[str] = None,
) -> CliResult:
    """Run the CLI to completion; the timeout is a safety net, never the expected path.

    The run is a child of the fork server (tests/cli_forkserver.py) when one can stand in
    for a fresh interpreter, else a new `python3 scripts/rebyte_cli.py` process."""
    env = env if env is not None else cli_env(base_url, api_key)
    stdin = stdin if stdin is not None else ""
    server = _fork_server(env)
    if server is not None:
        returncode, stdout, stderr = server.run(
            args, env=env, cwd=cwd, stdin=stdin, timeout=timeout
        )
        return CliResult(args, returncode, stdout, stderr)
    return run_cli_in_new_interpreter(*args, env=env, stdin=stdin, timeout=timeout, cwd=cwd)


def run_cli_in_new_interpreter(
    *args: str, env: Dict[str, str], stdin: str = "", timeout: float = 60,
    cwd: Optional[str] = None,
) -> CliResult:
    completed = subprocess.run(
        [sys.executable, str(CLI), *args],
        input=stdin,
        capture_output=True,
        text=True,
        env=env,
        timeout=timeout,
        cwd=cwd,
    )
    return CliResult(args, completed.returncode, completed.stdout, completed.stderr)


_FORK_SERVER_LOCK = threading.Lock()
_fork_servers: List[ForkServer] = []  # this process's, started on the first run


def _fork_server(env: Dict[str, str]) -> Optional[ForkServer]:
    if os.environ.get(FORK_SERVER_VARIABLE, "1") == "0" or not hasattr(os, "fork"):
        return None
    with _FORK_SERVER_LOCK:
        if not _fork_servers or _fork_servers[0].owner != os.getpid():
            folder = tempfile.mkdtemp(prefix="rebyte-cli-")
            _fork_servers[:] = [ForkServer(folder, WARM_UP, cli_env(None, None))]
            atexit.register(_stop_fork_server, _fork_servers[0], folder)
        server = _fork_servers[0]
    return server if server.can_run(env) else None


def _stop_fork_server(server: ForkServer, folder: str) -> None:
    server.stop()
    shutil.rmtree(folder, ignore_errors=True)


def start_cli(*args: str, env: Dict[str, str], cwd: Optional[str] = None) -> subprocess.Popen:
    """Start the CLI in the background (for Ctrl-C tests)."""
    return subprocess.Popen(
        [sys.executable, str(CLI), *args],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        cwd=cwd,
    )


def interrupt(process: subprocess.Popen, *, after: float, timeout: float = 20) -> CliResult:
    """Send SIGINT (Ctrl-C) after `after` seconds and collect what the CLI printed."""
    time.sleep(after)
    process.send_signal(signal.SIGINT)
    stdout, stderr = process.communicate(timeout=timeout)
    return CliResult(process.args, process.returncode, stdout, stderr)
