"""Robot state at franka_ros2's 1 kHz: the twin serves it at that rate, and franka_bridge does not pay per sample.

franka_robot_state_broadcaster publishes the full FrankaRobotState at the controller rate; a Python callback plus a
deserialisation per sample would need more than a core. The bridge lets the samples wait in a newest-only reader and
decodes one `state_rate_hz` times a second: its CPU must stay far below the per-sample cost.
"""
from __future__ import annotations

import time

import psutil
import pytest
from diagnostic_msgs.msg import DiagnosticArray
from geometry_msgs.msg import PoseStamped
from rclpy.qos import qos_profile_sensor_data

from sole_r1_ros.ros import conventions as conv
from sole_r1_ros.ros import franka_interfaces as fi

from .conftest import LaunchedGraph, RosHarness
from .franka_testlib import franka_msgs_env

GRAPH = """
description: fake_franka at 1 kHz + franka_bridge (test)
nodes:
  - name: fake_franka
    executable: fake_franka
    parameters: {state_rate_hz: 1000.0, publish_cameras: false}
  - name: franka_bridge
    executable: franka_bridge
    parameters: {state_rate_hz: 100.0}
"""
WINDOW_S = 4.0


def reported(diagnostics: list, node: str, key: str) -> int:
    """The newest value of `key` that `node` reported on /diagnostics (-1 before its first report)."""
    for _, array in reversed(diagnostics):
        for status in array.status:
            if status.name == f"sole_r1: {node}":
                return int({kv.key: kv.value for kv in status.values}[key])
    return -1


def cpu_seconds(process: psutil.Process) -> float:
    times = process.cpu_times()
    return times.user + times.system


@pytest.mark.slow
def test_the_bridge_holds_a_1_khz_robot_state_stream(tmp_path):
    (tmp_path / "graph.yaml").write_text(GRAPH)
    graph = LaunchedGraph(str(tmp_path / "graph.yaml"), {}, tmp_path / "graph.log", franka_msgs_env())
    harness = RosHarness("state_rate_test")
    try:
        poses = harness.collect(PoseStamped, conv.EE_POSE)
        diagnostics = harness.collect(DiagnosticArray, conv.DIAGNOSTICS)

        def counts() -> tuple[int, int]:
            return (reported(diagnostics, "fake_franka", "states_published"),
                    reported(diagnostics, "franka_bridge", "states_decoded"))

        harness.wait_for(lambda: poses and min(counts()) >= 0, 120.0,
                         f"the bridge's proprio and both nodes' diagnostics (log: {graph.log_path})")
        bridge = next(p for p in graph.descendants() if "franka_bridge" in " ".join(p.cmdline()))
        start, start_cpu, started = counts(), cpu_seconds(bridge), time.monotonic()
        time.sleep(WINDOW_S)
        harness.wait_for(lambda: all(a != b for a, b in zip(counts(), start)), 5.0, "newer diagnostics reports")
        seconds = time.monotonic() - started     # the reports come at 1 Hz: rates are estimates within ~20 %
        published, decoded = (now - before for now, before in zip(counts(), start))
        rate, decode_rate = published / seconds, decoded / seconds
        cpu = (cpu_seconds(bridge) - start_cpu) / seconds
        report = (f"twin {rate:.0f} states/s, bridge decoded {decode_rate:.0f}/s using {cpu:.2f} of a core "
                  f"(log: {graph.log_path})")
        print(report)
        # The behaviour under test: the bridge decodes only the newest sample, ~100 per second, however fast the
        # stream (a loaded CI box may not give the Python twin its full 1 kHz, so the twin's rate is checked only
        # relative to the decode rate). CPU use is printed, not asserted (timing asserts flake on shared machines):
        # measured on a loaded 2-core box, 0.31-0.38 of a core at 400-740 states/s, against a whole core from
        # ~600 states/s with a callback per sample.
        assert decode_rate <= 130 and decoded < published / 3, report
        assert graph.process.poll() is None, graph.log()
    finally:
        harness.close()
        code = graph.stop()
        graph.kill()
    assert code == 0, graph.log()


def test_robot_state_qos_matches_the_broadcaster_and_drops_stale_samples():
    # franka_robot_state_broadcaster: SystemDefaultsQoS (reliable, keep last 10); a best-effort reader matches it.
    assert fi.ROBOT_STATE_PUBLISHER_QOS.reliability.name == "RELIABLE" and fi.ROBOT_STATE_PUBLISHER_QOS.depth == 10
    assert fi.ROBOT_STATE_QOS.reliability.name == "BEST_EFFORT" and fi.ROBOT_STATE_QOS.depth == 1
    assert qos_profile_sensor_data.reliability == fi.ROBOT_STATE_QOS.reliability
