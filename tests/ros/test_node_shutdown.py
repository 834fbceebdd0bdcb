"""Ctrl-C stops a node quietly: exit code 0 and no traceback, whether it arrives during start-up or while running."""
from __future__ import annotations

import signal
import subprocess
import sys
import time

import pytest


@pytest.mark.slow
@pytest.mark.parametrize("delay_s", [1.0, 25.0], ids=["during_startup", "while_running"])
def test_learner_node_stops_on_sigint_without_a_traceback(tmp_path, delay_s):
    process = subprocess.Popen([sys.executable, "-m", "sole_r1_ros.nodes.learner_node", "--ros-args", "-p",
                                f"run_dir:={tmp_path / 'run'}"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               text=True)
    time.sleep(delay_s)
    process.send_signal(signal.SIGINT)
    try:
        output, _ = process.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        process.kill()
        output, _ = process.communicate()
        pytest.fail(f"learner_node did not stop within 60 s of SIGINT:\n{output[-3000:]}")
    assert "Traceback" not in output and "KeyboardInterrupt" not in output, output[-3000:]
    assert process.returncode == 0, output[-3000:]
