"""A fork server for the suite's CLI runs: one Python process per test worker that has
imported the CLI once, and forks a fresh child for each run.

A CLI run in a new interpreter spends most of its CPU importing `requests` and the
client (about 90 ms on this 2-core machine, several hundred runs a suite). A forked
child starts with those imports done, and is otherwise the run an agent makes: its own
process, the argv, environment, working folder and standard streams it is given, its
exit status (or the signal that ended it) reported back. The server itself starts no
threads, so that forking it is safe.

What a fork cannot copy is interpreter start-up, so cli_runner sends a run to a real
interpreter instead when its environment changes how Python starts (PYTHON*, the
locale), and SKILL_TESTS_FORKSERVER=0 sends every run there. test_cli_runner.py checks
that both ways print the same bytes and exit the same way.

    python tests/cli_forkserver.py SOCKET_PATH MODULE...   (started by ForkServer)
"""

from __future__ import annotations

import importlib
import json
import os
import selectors
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

CLI = Path(__file__).resolve().parent.parent / "scripts" / "rebyte_cli.py"
# Variables read once, at interpreter start-up: a run that sets them differently from the
# server's own environment needs an interpreter of its own.
STARTUP_VARIABLES = ("PYTHON", "LANG", "LC_")
# Set by the suite's own machinery, never by a test to change behaviour.
IGNORED_VARIABLES = {"PYTHONPYCACHEPREFIX", "PYTHONDONTWRITEBYTECODE"}
MAX_REQUEST = 1 << 20


def startup_environment(env: Dict[str, str]) -> Dict[str, str]:
    return {
        name: value
        for name, value in env.items()
        if name.startswith(STARTUP_VARIABLES) and name not in IGNORED_VARIABLES
    }


# ------------------------------------------------------------------------- the server


def _serve(path: str, modules: Sequence[str]) -> None:
    sys.path[0] = str(CLI.parent)  # as for `python3 scripts/rebyte_cli.py`, not tests/
    sys.argv = [str(CLI)]  # what modules read at import (the CLI's own name in hints)
    for name in modules:
        try:
            importlib.import_module(name)
        except ImportError:
            pass
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(path)
    listener.listen(64)
    sys.stdout.write("ready\n")
    sys.stdout.flush()
    waiting: Dict[int, socket.socket] = {}
    with selectors.DefaultSelector() as selector:
        selector.register(listener, selectors.EVENT_READ, "run")
        selector.register(sys.stdin, selectors.EVENT_READ, "parent")
        while True:
            for key, _ in selector.select(timeout=0.01):
                if key.data == "parent":  # the test worker closed our stdin: it is gone
                    return
                connection, _ = listener.accept()
                _start_run(connection, listener, waiting)
            _report_ended(waiting)


def _start_run(connection: socket.socket, listener: socket.socket, waiting: dict) -> None:
    try:
        message, fds, _, _ = socket.recv_fds(connection, MAX_REQUEST, 3)
        request = json.loads(message.decode("utf-8"))
    except (OSError, ValueError):
        connection.close()
        return
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid == 0:
        for held in (listener, connection, *waiting.values()):
            held.close()
        _run_child(request, fds)  # never returns
    for fd in fds:
        os.close(fd)
    connection.sendall(json.dumps({"pid": pid}).encode() + b"\n")
    waiting[pid] = connection


def _report_ended(waiting: dict) -> None:
    while waiting:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        connection = waiting.pop(pid, None)
        if connection is None:
            continue
        code = -os.WTERMSIG(status) if os.WIFSIGNALED(status) else os.WEXITSTATUS(status)
        try:
            connection.sendall(json.dumps({"returncode": code}).encode() + b"\n")
        except OSError:
            pass
        connection.close()


def _run_child(request: dict, fds: List[int]) -> None:
    """Become the CLI run: the streams, folder, environment and argv it was given."""
    code = 1
    try:
        for target, fd in enumerate(fds):
            os.dup2(fd, target)
            os.close(fd)
        os.chdir(request["cwd"])
        os.environ.clear()
        os.environ.update(request["env"])
        code = _exit_code_of_run(request["args"])
    finally:
        os._exit(code)


def _exit_code_of_run(args: List[str]) -> int:
    """Run the launcher as `python3 rebyte_cli.py ARGS` does, down to how it exits."""
    import runpy
    import traceback

    sys.argv = [str(CLI), *args]
    code = 0
    try:
        runpy.run_path(str(CLI), run_name="__main__")
    except SystemExit as stop:
        code = _exit_status(stop.code)
    except KeyboardInterrupt:
        traceback.print_exc()
        code = -signal.SIGINT
    except BaseException:  # noqa: BLE001 - an uncaught error ends the run, as in Python
        traceback.print_exc()
        code = 1
    code = _interpreter_shutdown(code)
    if code == -signal.SIGINT:
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        os.kill(os.getpid(), signal.SIGINT)
    return code


def _exit_status(value) -> int:
    if value is None:
        return 0
    if isinstance(value, int):
        return value & 0xFF
    print(value, file=sys.stderr)
    return 1


def _interpreter_shutdown(code: int) -> int:
    """What Python does after the main module: join threads, run atexit, flush streams."""
    import atexit

    shutdown = getattr(threading, "_shutdown", None)
    if shutdown is not None:
        shutdown()
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            code = 120 if code == 0 else code
    return code


# ------------------------------------------------------------------------- the client


class ForkServer:
    """One per test process, started on first use and stopped with the process."""

    def __init__(self, folder: str, modules: Sequence[str], env: Dict[str, str]) -> None:
        self.owner = os.getpid()
        self.socket_path = os.path.join(folder, "cli.sock")
        self.startup_env = startup_environment(env)
        self._process = subprocess.Popen(
            [sys.executable, __file__, self.socket_path, *modules],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env=env,
            text=True,
        )
        if self._process.stdout.readline().strip() != "ready":
            raise RuntimeError("the CLI fork server did not start")

    def can_run(self, env: Dict[str, str]) -> bool:
        return self._process.poll() is None and startup_environment(env) == self.startup_env

    def stop(self) -> None:
        self._process.stdin.close()
        try:
            self._process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._process.kill()
        self._process.stdout.close()
        try:
            os.unlink(self.socket_path)
        except OSError:
            pass

    def run(
        self,
        args: Sequence[str],
        *,
        env: Dict[str, str],
        cwd: Optional[str],
        stdin: str,
        timeout: float,
    ) -> Tuple[int, str, str]:
        """(returncode, stdout, stderr) of one run; subprocess.TimeoutExpired past timeout."""
        stdin_read, stdin_write = os.pipe()
        stdout_read, stdout_write = os.pipe()
        stderr_read, stderr_write = os.pipe()
        request = {"args": list(args), "env": env, "cwd": cwd or os.getcwd()}
        deadline = time.monotonic() + timeout
        connection = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            connection.settimeout(timeout)
            connection.connect(self.socket_path)
            socket.send_fds(
                connection,
                [json.dumps(request).encode("utf-8")],
                [stdin_read, stdout_write, stderr_write],
            )
        finally:
            for fd in (stdin_read, stdout_write, stderr_write):
                os.close(fd)
        with connection, connection.makefile("r", encoding="utf-8") as answers:
            pid = json.loads(answers.readline())["pid"]
            feeder = threading.Thread(target=_feed, args=(stdin_write, stdin), daemon=True)
            feeder.start()
            try:
                stdout, stderr = _read_both(stdout_read, stderr_read, deadline)
                connection.settimeout(max(0.01, deadline - time.monotonic()))
                returncode = json.loads(answers.readline())["returncode"]
            except (socket.timeout, TimeoutError):
                _kill(pid)
                raise subprocess.TimeoutExpired([str(CLI), *args], timeout) from None
            finally:
                feeder.join(timeout=5)
        return returncode, stdout, stderr


def _feed(fd: int, text: str) -> None:
    try:
        with open(fd, "w", encoding="utf-8") as pipe:
            pipe.write(text)
    except BrokenPipeError:
        pass


def _read_both(stdout_fd: int, stderr_fd: int, deadline: float) -> Tuple[str, str]:
    """Both streams to their end, by the deadline."""
    chunks: Dict[int, List[bytes]] = {stdout_fd: [], stderr_fd: []}
    with selectors.DefaultSelector() as selector:
        for fd in chunks:
            selector.register(fd, selectors.EVENT_READ)
        try:
            while selector.get_map():
                ready = selector.select(timeout=max(0.0, deadline - time.monotonic()))
                if not ready:
                    raise socket.timeout("the CLI run did not end in time")
                for key, _ in ready:
                    data = os.read(key.fd, 65536)
                    if data:
                        chunks[key.fd].append(data)
                    else:
                        selector.unregister(key.fd)
        finally:
            os.close(stdout_fd)
            os.close(stderr_fd)
    return tuple(_text(b"".join(chunks[fd])) for fd in (stdout_fd, stderr_fd))


def _text(data: bytes) -> str:
    """As subprocess.run(text=True) decodes: the locale's encoding, universal newlines."""
    import io
    import locale

    encoding = locale.getpreferredencoding(False)
    return io.TextIOWrapper(io.BytesIO(data), encoding=encoding).read()


def _kill(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGKILL)
    except OSError:
        pass


if __name__ == "__main__":
    _serve(sys.argv[1], sys.argv[2:])
