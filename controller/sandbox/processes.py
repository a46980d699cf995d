"""Child processes with a log file each, stopped for sure (process group, TERM then KILL)."""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


def _die_with_parent() -> None:
    """In the child, before exec: ask Linux to SIGKILL it when the parent exits (PR_SET_PDEATHSIG)."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(1, signal.SIGKILL, 0, 0, 0)  # 1 = PR_SET_PDEATHSIG


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


@dataclass
class ManagedProcess:
    name: str
    argv: Sequence[str]
    log_path: Path
    env: dict[str, str] | None = None
    cwd: Path | None = None
    # Tests and benchmarks want their processes gone if they die themselves; the sandbox's
    # processes must outlive the `chaosdemo sandbox up` that started them.
    die_with_parent: bool = True
    popen: subprocess.Popen[bytes] | None = field(default=None, init=False)

    def start(self) -> ManagedProcess:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        log = open(self.log_path, "ab")  # noqa: SIM115 - handed to the child, closed in stop()
        # A new session makes the child a process-group leader, so stop() can signal the
        # whole group: nothing the child spawned survives the harness.
        self.popen = subprocess.Popen(
            list(self.argv),
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env={**os.environ, **(self.env or {})},
            cwd=self.cwd,
            start_new_session=True,
            preexec_fn=_die_with_parent if self.die_with_parent else None,
        )
        log.close()
        return self

    @property
    def pid(self) -> int | None:
        return self.popen.pid if self.popen else None

    def alive(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def kill(self, sig: int = signal.SIGKILL) -> None:
        if self.popen and self.popen.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.popen.pid, sig)

    def stop(self, timeout: float = 10.0) -> None:
        if not self.popen:
            return
        if self.popen.poll() is None:
            self.kill(signal.SIGTERM)
            try:
                self.popen.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.kill(signal.SIGKILL)
                self.popen.wait(timeout=timeout)
        # Children of the group may outlive the leader; make sure they are gone too.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.popen.pid, signal.SIGKILL)


class ProcessExited(RuntimeError):
    """A process being waited for has died: waiting longer cannot help."""


def wait_until(predicate, timeout: float, interval: float = 0.2, what: str = "condition") -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        try:
            if predicate():
                return
        except ProcessExited:
            raise
        except Exception as exc:  # the predicate probes something that may not be up yet
            last_error = exc
        time.sleep(interval)
    raise TimeoutError(
        f"timed out after {timeout:.0f}s waiting for {what}" + (f": {last_error}" if last_error else "")
    )


def wait_ready(
    process: ManagedProcess, url: str, timeout: float = 60, opener: Callable[..., Any] | None = None
) -> None:
    """Wait for ``url`` to answer 200 (Prometheus' and Alertmanager's ``/-/ready``); fail at once,
    with the process's log, if it exits meanwhile. ``opener(url, timeout)``: how to ask (TLS, auth)."""
    import urllib.request

    open_url = opener or (lambda u, timeout: urllib.request.urlopen(u, timeout=timeout))

    def ready() -> bool:
        if not process.alive():
            raise ProcessExited(f"{process.name} exited:\n{process.log_tail()}")
        with open_url(url, timeout=2) as r:
            return bool(r.status == 200)

    wait_until(ready, timeout, what=f"{process.name} {url}")
