"""`make run`'s supervisor with real child processes: a process that exits
is started again after a backoff that doubles, one that keeps exiting is
reported as crash-looping with its exit code and log, and the others are
never touched."""

import sys
import time
from pathlib import Path

from devstack import Stack, Supervisor, stop_process

EXITS = [sys.executable, "-c", "raise SystemExit(3)"]
SLEEPS = [sys.executable, "-c", "import time; time.sleep(60)"]


def tick_until(supervisor: Supervisor, lines: list[str], text: str, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while not any(text in line for line in lines):
        assert time.monotonic() < deadline, f"no {text!r} in {lines}"
        supervisor.tick()
        time.sleep(0.02)


def test_a_crash_loop_is_restarted_with_backoff_and_reported(tmp_path: Path) -> None:
    stack = Stack(log_dir=tmp_path)
    steady = stack._spawn("steady", SLEEPS, {})
    flaky = stack._spawn("flaky", EXITS, {})
    lines: list[str] = []
    supervisor = Supervisor(stack, lines.append, initial=0.1, ceiling=0.3, loop_exits=3)
    try:
        tick_until(supervisor, lines, "flaky is crash-looping")
        exits = [line for line in lines if line.startswith("flaky exited with code 3")]
        # Doubling from 0.1 s, up to the ceiling.
        assert [line.rsplit(" in ", 1)[1] for line in exits] == ["0.1 s", "0.2 s", "0.3 s"]
        assert f"last with code 3; its log: {tmp_path / 'flaky.log'}" in lines[-1]
        assert stack.process("flaky").popen is not flaky.popen  # started again
        assert stack.process("steady").popen is steady.popen
        assert steady.popen.poll() is None
        assert [p.name for p in stack.processes] == ["steady", "flaky"]  # the stop order is kept
    finally:
        stack.stop(timeout=5)


def test_a_process_back_up_is_reported_once(tmp_path: Path) -> None:
    stack = Stack(log_dir=tmp_path)
    first = stack._spawn("worker", SLEEPS, {})
    lines: list[str] = []
    supervisor = Supervisor(stack, lines.append, initial=0.1)
    try:
        stop_process(first.popen, timeout=5)
        tick_until(supervisor, lines, "worker is back")
        supervisor.tick()
        assert lines[0].startswith("worker exited with code -15; restarting it in 0.1 s")
        assert [line for line in lines if "is back" in line] == [lines[-1]]
        assert stack.process("worker").popen.poll() is None
    finally:
        stack.stop(timeout=5)


def test_a_broker_in_memory_comes_back_with_the_services_started_again(tmp_path: Path) -> None:
    """It comes back empty: the services, which make their topics at start-up, start again with it."""
    stack = Stack(log_dir=tmp_path, kafka_storage="memory")
    broker = stack._spawn("broker", SLEEPS, {})
    service = stack._spawn("session", SLEEPS, {}, ready_url="http://127.0.0.1:9/health/ready")
    lines: list[str] = []
    supervisor = Supervisor(stack, lines.append, initial=0.1)
    try:
        stop_process(broker.popen, timeout=5)
        tick_until(supervisor, lines, "starting the services again")
        assert stack.process("broker").popen is not broker.popen
        assert stack.process("session").popen is not service.popen
        assert service.popen.poll() is not None  # the old one was stopped
        assert [p.name for p in stack.processes] == ["broker", "session"]
    finally:
        stack.stop(timeout=5)
