"""Lifecycle of one private server process for the tests: free loopback ports,
start with a bounded wait for readiness, stop (TERM, then KILL), kill, restart
on the same data. Knows nothing about any particular database; the subclasses
in ``tests/support/servers.py`` say how to prepare, launch and probe one.

  start() ─► _prepare() once ─► Popen(_command()) ─► poll _ready() until
             startup_timeout_s ─► _after_ready()      (failure: log tail in the error;
                                                       a port clash on first start
                                                       retries on fresh ports)
"""

from __future__ import annotations

import ctypes
import os
import random
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

HOST = "127.0.0.1"
# Where Debian puts daemons; a non-root PATH often lacks the sbin directories.
_EXTRA_BIN_DIRS = ("/usr/sbin", "/sbin", "/usr/local/sbin")
# Attempts at a first start when a port turns out taken between the bind test
# and the server's own bind (another xdist worker drew it too, some other program).
_PORT_ATTEMPTS = 5
_PR_SET_PDEATHSIG = 1
# Ports drawn from the span just below the ephemeral range; wide enough that
# two workers rarely draw the same one, narrow enough to stay clear of the
# registered service ports most hosts actually listen on.
_PORT_SPAN = 10000
_RANDOM = random.SystemRandom()


class ServerBinaryMissing(RuntimeError):
    """A server binary is not installed; names the Debian package that has it."""

    def __init__(self, binary: str, package: str) -> None:
        super().__init__(
            f"{binary} not found on PATH or in {', '.join(_EXTRA_BIN_DIRS)}: "
            f"install Debian package {package!r} (bash tools/ci_setup.sh does)")
        self.binary = binary
        self.package = package


class ServerStartError(RuntimeError):
    """A server did not come up; the message carries its log tail."""


def find_binary(*names: str, package: str) -> str:
    """Absolute path of the first of ``names`` that is installed."""
    search = os.pathsep.join([os.environ.get("PATH", ""), *_EXTRA_BIN_DIRS])
    for name in names:
        found = shutil.which(name, path=search)
        if found:
            return found
    raise ServerBinaryMissing(" / ".join(names), package)


def _ephemeral_low() -> int:
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def _bindable(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        try:
            probe.bind((HOST, port))
        except OSError:
            return False
        return True


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago.

    Picked at random *below* the kernel's ephemeral range, so no outgoing
    connection takes it while a server is down for a restart; SystemRandom,
    so xdist workers (pytest-randomly seeds ``random`` alike) draw differently.
    A clash with a concurrent caller is retried by ``ServerProcess.start``.
    """
    low = _ephemeral_low()
    if low > _PORT_SPAN + 1024:
        for _ in range(100):
            port = _RANDOM.randrange(low - _PORT_SPAN, low)
            if _bindable(port):
                return port
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((HOST, 0))  # fall back to the kernel's pick
        return int(probe.getsockname()[1])


def _die_with_parent() -> None:
    # Runs in the child before exec: if the test process dies without tearing
    # down (SIGKILL, crash), the server gets SIGTERM instead of living on.
    # Linux ties this to the *thread* that forked: start servers from the main
    # thread (pytest fixtures do).
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, int(signal.SIGTERM), 0, 0, 0)


class ServerProcess:
    """Base class: one server on loopback ports with its data in ``base_dir``."""

    name = "server"
    # Log lines whose presence after a failed first start means "port taken".
    port_clash_markers: tuple[str, ...] = ("Address already in use",)

    def __init__(self, base_dir: Path, *, startup_timeout_s: float = 30.0,
                 stop_timeout_s: float = 20.0) -> None:
        self.base_dir = Path(base_dir)
        self.base_dir.mkdir(parents=True, exist_ok=True)
        # Generous by default: a start takes 0.1-2 s here (figures in
        # servers.py), a loaded CI box may take several times that; a timeout
        # only costs time when a server is truly broken.
        self.startup_timeout_s = startup_timeout_s
        self.stop_timeout_s = stop_timeout_s
        self.host = HOST
        self.console_log = self.base_dir / "console.log"
        self.last_start_s: float | None = None  # seconds the last start() took
        self._process: subprocess.Popen[bytes] | None = None
        self._prepared = False
        self._ports_fixed = False  # once up, restarts keep the same ports
        self._log_offsets: dict[Path, int] = {}  # log sizes when the last launch began

    # -- subclass hooks ---------------------------------------------------
    def _assign_ports(self) -> None:
        raise NotImplementedError

    def _prepare(self) -> None:
        """One-time setup of the data directory (before the first launch)."""

    def _command(self) -> list[str]:
        raise NotImplementedError

    def _ready(self) -> bool:
        """True once the server accepts our user's connections."""
        raise NotImplementedError

    def _after_ready(self) -> None:
        """Idempotent setup that needs the running server."""

    def _log_files(self) -> list[Path]:
        return [self.console_log]

    # -- lifecycle --------------------------------------------------------
    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    @property
    def pid(self) -> int | None:
        return self._process.pid if self.running and self._process else None

    def start(self) -> None:
        """Start (or restart on the same data and ports); no-op if running."""
        if self.running:
            return
        started = time.monotonic()
        if not self._ports_fixed:
            self._assign_ports()
        if not self._prepared:
            self._prepare()
            self._prepared = True
        attempts = 1 if self._ports_fixed else _PORT_ATTEMPTS
        for attempt in range(1, attempts + 1):
            try:
                self._launch_and_wait()
                break
            except ServerStartError:
                if attempt == attempts or not self._port_clash():
                    raise
                self._assign_ports()
        self._ports_fixed = True
        self.last_start_s = time.monotonic() - started

    def stop(self) -> None:
        """Graceful stop: SIGTERM, wait ``stop_timeout_s``, then SIGKILL."""
        process = self._process
        if process is None:
            return
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(self.stop_timeout_s)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        self._process = None

    def kill(self) -> None:
        """SIGKILL, as a crash would; ``start()`` again recovers the data."""
        process = self._process
        if process is None:
            return
        if process.poll() is None:
            process.kill()
        process.wait()
        self._process = None

    def restart(self) -> None:
        self.stop()
        self.start()

    def __enter__(self) -> ServerProcess:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def log_tail(self, lines: int = 40) -> str:
        parts = []
        for path in self._log_files():
            if path.exists():
                text = path.read_text(errors="replace").splitlines()[-lines:]
                parts.append(f"--- {path} (last {len(text)} lines)\n" + "\n".join(text))
        return "\n".join(parts) or "(no log written)"

    # -- internals --------------------------------------------------------
    def _launch_and_wait(self) -> None:
        command = self._command()
        self._log_offsets = {path: path.stat().st_size if path.exists() else 0
                             for path in self._log_files()}
        with open(self.console_log, "ab") as console:
            self._process = subprocess.Popen(
                command, stdin=subprocess.DEVNULL, stdout=console, stderr=subprocess.STDOUT,
                cwd=self.base_dir, start_new_session=True, preexec_fn=_die_with_parent)
        deadline = time.monotonic() + self.startup_timeout_s
        while True:
            assert self._process is not None
            code = self._process.poll()
            if code is not None:
                self._process = None
                raise ServerStartError(
                    f"{self.name} exited with code {code} during startup: {' '.join(command)}\n"
                    + self.log_tail())
            if self._ready():
                break
            if time.monotonic() > deadline:
                self.kill()
                raise ServerStartError(
                    f"{self.name} not ready within {self.startup_timeout_s} s: {' '.join(command)}\n"
                    + self.log_tail())
            time.sleep(0.05)
        self._after_ready()

    def _port_clash(self) -> bool:
        # Only what the failed launch wrote: an old clash must not hide a new error.
        for path, offset in self._log_offsets.items():
            if path.exists():
                with open(path, "rb") as log:
                    log.seek(offset)
                    fresh = log.read().decode(errors="replace")
                if any(marker in fresh for marker in self.port_clash_markers):
                    return True
        return False
