"""ROS test helpers: an in-process node with a background executor, and graphs started through the runner."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any, Callable, Optional

import psutil
import pytest
import rclpy
from rclpy.context import Context
from rclpy.executors import SingleThreadedExecutor

from sole_r1_ros.ros import conventions as conv

SOLE_R1 = str(Path(sys.executable).with_name("sole-r1"))


class RosHarness:
    """A test-side rclpy node spun in a background thread, with helpers to collect messages and wait."""

    def __init__(self, name: str = "test_harness"):
        self.context = Context()
        rclpy.init(context=self.context)
        self.node = rclpy.create_node(name, context=self.context)
        self.executor = SingleThreadedExecutor(context=self.context)
        self.executor.add_node(self.node)
        self._thread = threading.Thread(target=self._spin, daemon=True)
        self._thread.start()

    def _spin(self) -> None:
        while self.context.ok():
            try:
                self.executor.spin_once(timeout_sec=0.05)
            except Exception:  # noqa: BLE001 -- shutdown races
                if not self.context.ok():
                    return
                raise

    def collect(self, msg_type: type, topic: str, qos=conv.RELIABLE_QOS) -> list:
        """Subscribe and return a list that fills with (receive_time, message) tuples."""
        received: list = []
        self.node.create_subscription(msg_type, topic, lambda m: received.append((time.monotonic(), m)), qos)
        return received

    def wait_for(self, predicate: Callable[[], Any], timeout: float = 10.0, what: str = "condition") -> Any:
        """Poll until predicate() is truthy; fail the test with `what` after `timeout` seconds."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            value = predicate()
            if value:
                return value
            time.sleep(0.02)
        pytest.fail(f"timed out after {timeout:.0f} s waiting for {what}")

    def call(self, client, request, timeout: float = 10.0):
        """Call a service from the test thread and return its response."""
        if not client.wait_for_service(timeout_sec=timeout):
            pytest.fail(f"service {client.srv_name} not available after {timeout:.0f} s")
        future = client.call_async(request)
        self.wait_for(future.done, timeout, f"response of {client.srv_name}")
        return future.result()

    def close(self) -> None:
        """Stop spinning and shut the context down."""
        self.executor.shutdown(timeout_sec=1.0)
        self.node.destroy_node()
        if self.context.ok():
            rclpy.shutdown(context=self.context)
        self._thread.join(2.0)


@pytest.fixture
def ros():
    """A RosHarness for one test."""
    harness = RosHarness()
    yield harness
    harness.close()


class LaunchedGraph:
    """A `sole-r1 launch` subprocess whose output goes to a log file."""

    def __init__(self, graph: str, args: dict, log_path: Path, env: Optional[dict] = None):
        self.log_path = log_path
        self._log = open(log_path, "wb")
        cmd = [SOLE_R1, "launch", graph, *[f"{k}:={v}" for k, v in args.items()], "--grace-period", "5"]
        self.process = subprocess.Popen(cmd, stdout=self._log, stderr=subprocess.STDOUT,
                                        env={**os.environ, **(env or {})}, start_new_session=True)

    def log(self) -> str:
        """Everything the runner and its nodes printed so far."""
        return self.log_path.read_text(errors="replace")

    def descendants(self) -> list[psutil.Process]:
        """The runner's child processes (the nodes), recursively."""
        try:
            return psutil.Process(self.process.pid).children(recursive=True)
        except psutil.NoSuchProcess:
            return []

    def stop(self, sig: int = signal.SIGINT, timeout: float = 30.0) -> int:
        """Send `sig` to the runner and wait for it to exit; returns the exit code."""
        if self.process.poll() is None:
            self.process.send_signal(sig)
        try:
            return self.process.wait(timeout)
        finally:
            self._log.close()

    def kill(self) -> None:
        """Hard-stop the runner and anything left of its graph (test teardown)."""
        for proc in self.descendants():
            proc.kill()
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)
        if not self._log.closed:
            self._log.close()


@pytest.fixture
def launch_graph(tmp_path):
    """Factory: launch_graph(graph, **args) -> LaunchedGraph, killed at teardown if still running."""
    started: list[LaunchedGraph] = []

    def start(graph: str, env: Optional[dict] = None, **args) -> LaunchedGraph:
        launched = LaunchedGraph(graph, args, tmp_path / f"{Path(graph).stem}-{len(started)}.log", env)
        started.append(launched)
        return launched

    yield start
    for launched in started:
        launched.kill()
        # pytest shows this only for a failing test: CI keeps no tmp_path, so the graph's log must be in the report.
        lines = launched.log().splitlines()
        print(f"---- last {min(len(lines), 80)} of {len(lines)} lines of {launched.log_path.name} ----")
        print("\n".join(lines[-80:]))
