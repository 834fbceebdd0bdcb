"""Start every node of a resolved graph as its own process; prefix logs; stop all cleanly.

Each node runs as `python -m sole_r1_ros.nodes.<executable> --ros-args -r __node:=<name> --params-file <file>`
(from a colcon install: `python <prefix>/lib/sole_r1/<executable> ...`, the installed executable) in its own
process group, so a terminal Ctrl-C reaches only the runner, which then forwards SIGINT to every node,
waits, and escalates to SIGTERM and SIGKILL for nodes that do not stop. Children also get PR_SET_PDEATHSIG, so even a
SIGKILLed runner leaves no orphan nodes behind.
"""
from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Optional, TextIO

import yaml

from sole_r1_config.paths import installed_executable, venv_python
from sole_r1_ros.runner.graph import Graph, NodeSpec, params_file_content

_PR_SET_PDEATHSIG = 1
_COLOURS = ["\033[36m", "\033[32m", "\033[35m", "\033[33m", "\033[34m", "\033[31m"]


def _die_with_parent() -> None:
    """preexec_fn: ask Linux to SIGTERM this child when the runner dies, however it dies."""
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    except OSError:
        pass


class NodeProcess:
    """One running node: its process, params file and log-forwarding thread."""

    def __init__(self, spec: NodeSpec, params_file: Path, env: dict, out: TextIO, colour: str):
        self.spec = spec
        python = sys.executable
        if spec.venv:
            python = str(venv_python(spec.venv))
            # That venv's own ROS wheels bootstrap must run: drop the marker and library path of ours.
            env = {k: v for k, v in env.items() if k not in ("_ROS_WHEELS_BOOTSTRAP_COMPLETE", "LD_LIBRARY_PATH")}
        script = installed_executable(spec.executable)
        cmd = [python, "-u", *([str(script)] if script else ["-m", spec.module]), "--ros-args",
               "-r", f"__node:={spec.name}"]
        for extra in spec.params_files:   # before the graph's own parameters, which win
            cmd += ["--params-file", extra]
        cmd += ["--params-file", str(params_file)]
        if spec.namespace:
            cmd += ["-r", f"__ns:=/{spec.namespace.strip('/')}"]
        for source, target in spec.remappings.items():
            cmd += ["-r", f"{source}:={target}"]
        self.command = cmd
        self.process = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                        stdin=subprocess.DEVNULL, start_new_session=True,
                                        preexec_fn=_die_with_parent)
        prefix = f"{colour}[{spec.name}]\033[0m " if colour else f"[{spec.name}] "
        self._thread = threading.Thread(target=self._forward, args=(out, prefix), daemon=True)
        self._thread.start()

    def _forward(self, out: TextIO, prefix: str) -> None:
        assert self.process.stdout is not None
        for raw in iter(self.process.stdout.readline, b""):
            out.write(prefix + raw.decode(errors="replace").rstrip("\n") + "\n")
            out.flush()

    def poll(self) -> Optional[int]:
        """Exit code, or None while running."""
        return self.process.poll()

    def signal(self, sig: int) -> None:
        """Send a signal to the node's process group (the node and anything it started)."""
        if self.process.poll() is None:
            try:
                os.killpg(self.process.pid, sig)
            except ProcessLookupError:
                pass

    def join_logs(self, timeout: float = 2.0) -> None:
        """Wait for the last log lines to be forwarded."""
        self._thread.join(timeout)


class GraphRunner:
    """Runs a resolved Graph until Ctrl-C/SIGTERM or until a required node dies."""

    def __init__(self, graph: Graph, out: TextIO = sys.stdout, grace_period: float = 10.0,
                 colour: Optional[bool] = None):
        self.graph = graph
        self.out = out
        self.grace_period = grace_period
        self.colour = out.isatty() if colour is None else colour
        self.nodes: list[NodeProcess] = []
        self._stop = threading.Event()
        self._tmp = tempfile.TemporaryDirectory(prefix="sole_r1_graph_")

    def _log(self, text: str) -> None:
        self.out.write(f"[sole-r1 launch] {text}\n")
        self.out.flush()

    def start(self) -> None:
        """Start every node with its params file and the graph's environment."""
        env = dict(os.environ)
        env.update(self.graph.environment)
        env.setdefault("PYTHONUNBUFFERED", "1")
        env.setdefault("RCUTILS_CONSOLE_OUTPUT_FORMAT", "[{severity}] [{time}] {message}")
        for index, spec in enumerate(self.graph.nodes):
            params_file = Path(self._tmp.name) / f"{spec.name}.yaml"
            params_file.write_text(yaml.safe_dump(params_file_content(spec), sort_keys=False))
            colour = _COLOURS[index % len(_COLOURS)] if self.colour else ""
            self.nodes.append(NodeProcess(spec, params_file, env, self.out, colour))
        names = ", ".join(n.spec.name for n in self.nodes)
        self._log(f"started {len(self.nodes)} node(s) from {self.graph.path.name}: {names}")

    def request_stop(self, *_: object) -> None:
        """Ask the run loop to stop (signal handler)."""
        self._stop.set()

    def run(self) -> int:
        """Start the graph and supervise it; returns the process exit code (0 on a requested stop)."""
        signal.signal(signal.SIGINT, self.request_stop)
        signal.signal(signal.SIGTERM, self.request_stop)
        self.start()
        code = 0
        try:
            code = self.supervise()
        finally:
            self.shutdown()
        return code

    def supervise(self) -> int:
        """Block until a stop is requested (0), a required node dies (1) or every node has finished (0)."""
        reported: set[str] = set()
        while not self._stop.wait(0.1):
            running = 0
            for node in self.nodes:
                code = node.poll()
                if code is None:
                    running += 1
                    continue
                if node.spec.name in reported:
                    continue
                reported.add(node.spec.name)
                node.join_logs()
                if node.spec.shutdown_on_exit:
                    self._log(f"node '{node.spec.name}' exited with code {code}: stopping the graph (shutdown_on_exit)")
                    return code
                if node.spec.required and code != 0:
                    self._log(f"required node '{node.spec.name}' exited with code {code}: stopping the graph "
                              f"(its last log lines are above, prefixed [{node.spec.name}])")
                    return 1
                self._log(f"node '{node.spec.name}' finished with code {code}")
            if running == 0:
                self._log("all nodes finished")
                return 0
        self._log("stop requested: shutting down all nodes")
        return 0

    def shutdown(self) -> None:
        """SIGINT every node, then SIGTERM, then SIGKILL those that outlive the grace period."""
        for sig, wait in ((signal.SIGINT, self.grace_period), (signal.SIGTERM, 3.0), (signal.SIGKILL, 3.0)):
            alive = [n for n in self.nodes if n.poll() is None]
            if not alive:
                break
            if sig != signal.SIGINT:
                self._log(f"{', '.join(n.spec.name for n in alive)} still running: sending {signal.Signals(sig).name}")
            for node in alive:
                node.signal(sig)
            deadline = time.monotonic() + wait
            while time.monotonic() < deadline and any(n.poll() is None for n in alive):
                time.sleep(0.05)
        for node in self.nodes:
            node.join_logs()
        self._tmp.cleanup()
