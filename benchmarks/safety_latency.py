"""Safety gate reaction times, across processes: e-stop -> first hold, and camera watchdog trip.

    .venv/bin/python benchmarks/safety_latency.py [--estop-trials 50] [--watchdog-trials 20]

Three processes, as on the robot: the safety_gate node; this process (feeds the gate like a running graph: two
128x128 cameras at 30 Hz, EE pose at 100 Hz, progress at 1 Hz, learner commands at 10 Hz; publishes /estop True and
calls /safety/reset_estop between trials; stops the camera streams); and a listener process that timestamps every
EEDeltaCommand the gate sends on /robot/command. CLOCK_MONOTONIC is shared by the processes, so times compare.

- e-stop latency: /estop True published -> first hold command received by the listener. Target p99 < 50 ms.
- watchdog trip: last camera frame sent -> first hold received. It includes the configured camera_timeout_s
  (0.5 s, config/real_franka.yaml); the overshoot beyond it is what the gate adds. Target overshoot p99 < 200 ms.
"""
from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np


def listen(out_path: str) -> None:
    """Listener role (child process): record (monotonic receive time, hold) of every gated command until SIGINT."""
    import rclpy
    from rclpy.executors import ExternalShutdownException

    from sole_r1.msg import EEDeltaCommand
    from sole_r1_ros.ros import conventions as conv

    rclpy.init()
    node = rclpy.create_node("bench_safety_listener")
    received: list = []
    node.create_subscription(EEDeltaCommand, conv.ROBOT_COMMAND,
                             lambda m: received.append((time.monotonic(), bool(m.hold))), conv.RELIABLE_QOS)
    print("listening", flush=True)
    try:
        rclpy.spin(node)
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    Path(out_path).write_text(json.dumps(received))


class Feeder:
    """The graph around the gate, in this process: sensor streams, learner commands, e-stop and reset."""

    def __init__(self) -> None:
        import rclpy
        from geometry_msgs.msg import PoseStamped
        from rclpy.executors import SingleThreadedExecutor
        from sensor_msgs.msg import Image
        from std_msgs.msg import Bool
        from std_srvs.srv import Trigger

        from sole_r1.msg import EEDeltaCommand, ProgressEstimate
        from sole_r1_ros.ros import conventions as conv
        from sole_r1_ros.ros.images import numpy_to_image
        from sole_r1_ros.ros.msg_convert import pose_from_arrays

        rclpy.init()
        self.node = node = rclpy.create_node("bench_safety_feeder")
        self.cameras_on = True
        frame = np.full((128, 128, 3), 90, np.uint8)
        images = [node.create_publisher(Image, t, conv.IMAGE_PUBLISHER_QOS)
                  for t in (conv.SHOULDER_IMAGE, conv.WRIST_IMAGE)]
        pose = node.create_publisher(PoseStamped, conv.EE_POSE, conv.RELIABLE_QOS)
        progress = node.create_publisher(ProgressEstimate, conv.PROGRESS, conv.RELIABLE_QOS)
        commands = node.create_publisher(EEDeltaCommand, conv.LEARNER_COMMAND, conv.RELIABLE_QOS)
        self.estop = node.create_publisher(Bool, conv.ESTOP, conv.LATCHED_QOS)
        self.reset = node.create_client(Trigger, conv.RESET_ESTOP_SERVICE)
        self.last_frame_sent = 0.0

        def send_frames():
            if self.cameras_on:
                stamp = node.get_clock().now().to_msg()
                for pub in images:
                    pub.publish(numpy_to_image(frame, "rgb8", stamp=stamp))
                self.last_frame_sent = time.monotonic()

        def send_command():
            msg = EEDeltaCommand(gripper=0.0)
            msg.translation.x = 0.001
            msg.header.stamp = node.get_clock().now().to_msg()
            commands.publish(msg)

        node.create_timer(1 / 30, send_frames)
        node.create_timer(1 / 100, lambda: pose.publish(pose_from_arrays([0.45, 0.0, 0.25], [1.0, 0.0, 0.0, 0.0])))
        node.create_timer(1.0, lambda: progress.publish(ProgressEstimate(valid=True, progress=10.0)))
        node.create_timer(1 / 10, send_command)
        self.executor = SingleThreadedExecutor()
        self.executor.add_node(node)
        self._thread = threading.Thread(target=self.executor.spin, daemon=True)
        self._thread.start()

    def trigger_estop(self) -> float:
        """Publish /estop True; returns the publish time."""
        from std_msgs.msg import Bool

        t = time.monotonic()
        self.estop.publish(Bool(data=True))
        return t

    def reset_estop(self) -> None:
        """Release the gate's latch (blocks until the service answers)."""
        from std_srvs.srv import Trigger

        if not self.reset.wait_for_service(timeout_sec=10.0):
            raise RuntimeError("safety_gate's reset service did not appear")
        future = self.reset.call_async(Trigger.Request())
        deadline = time.monotonic() + 10.0
        while not future.done() and time.monotonic() < deadline:
            time.sleep(0.005)
        if not future.done() or not future.result().success:
            raise RuntimeError(f"e-stop reset failed: {future.result() if future.done() else 'timeout'}")

    def close(self) -> None:
        """Stop spinning."""
        import rclpy

        self.executor.shutdown(timeout_sec=1.0)
        self.node.destroy_node()
        rclpy.shutdown()


def first_hold_after(events: list, t0: float, t1: float) -> float | None:
    """Receive time of the first hold in (t0, t1], or None when there is none -- or when the gate was already
    holding at t0 (its last command before t0 was a hold), which would make the trial meaningless."""
    before = [hold for t, hold in events if t <= t0]
    if before and before[-1]:
        return None
    return next((t for t, hold in events if t0 < t <= t1 and hold), None)


def stats(values_ms: list) -> str:
    """p50 / p99 / max of a list of milliseconds."""
    if not values_ms:
        return "no samples"
    v = np.asarray(values_ms)
    p50, p99 = np.percentile(v, 50), np.percentile(v, 99)
    return f"p50 {p50:6.1f} ms   p99 {p99:6.1f} ms   max {v.max():6.1f} ms  (n={v.size})"


def main() -> int:
    """Run the gate, the listener and the trials; print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--estop-trials", type=int, default=50)
    parser.add_argument("--watchdog-trials", type=int, default=20)
    parser.add_argument("--camera-timeout", type=float, default=0.15, help="safety gate camera_timeout_s")
    parser.add_argument("--listen", metavar="OUT_JSON", help=argparse.SUPPRESS)   # child role
    args = parser.parse_args()
    if args.listen:
        listen(args.listen)
        return 0

    os.environ.setdefault("ROS_DOMAIN_ID", str(150 + os.getpid() % 60))
    os.environ["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"
    workdir = Path(tempfile.mkdtemp(prefix="safety_latency_"))
    params = workdir / "gate.yaml"
    params.write_text(json.dumps({"safety_gate": {"ros__parameters": {
        "camera_timeout_s": args.camera_timeout, "proprio_timeout_s": 0.25, "reward_timeout_s": 5.0,
        "command_timeout_s": 0.5, "workspace_min": [0.3, -0.3, 0.03], "workspace_max": [0.7, 0.3, 0.45]}}}))
    gate = subprocess.Popen([sys.executable, "-m", "sole_r1_ros.nodes.safety_gate", "--ros-args", "--params-file",
                             str(params)], stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    events_path = workdir / "events.json"
    listener = subprocess.Popen([sys.executable, __file__, "--listen", str(events_path)], stdout=subprocess.PIPE,
                                text=True)
    feeder = None
    try:
        listener.stdout.readline()
        feeder = Feeder()
        time.sleep(3.0)                       # discovery, and every watchdog input fresh
        estop_trials, watchdog_trials = [], []
        for _ in range(args.estop_trials):
            t0 = feeder.trigger_estop()
            time.sleep(0.25)
            feeder.reset_estop()
            estop_trials.append(t0)
            time.sleep(0.35)                  # commands pass again before the next trial
        for _ in range(args.watchdog_trials):
            feeder.cameras_on = False
            time.sleep(0.05)
            last = feeder.last_frame_sent
            time.sleep(args.camera_timeout + 0.4)
            feeder.cameras_on = True
            watchdog_trials.append(last)
            time.sleep(0.6)
    finally:
        if feeder is not None:
            feeder.close()
        for proc in (listener, gate):
            proc.send_signal(signal.SIGINT)
        for proc in (listener, gate):
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
    events = json.loads(events_path.read_text())
    estop_ms = [1e3 * (t - t0) for t0 in estop_trials if (t := first_hold_after(events, t0, t0 + 0.25)) is not None]
    trip_ms = [1e3 * (t - t0) for t0 in watchdog_trials
               if (t := first_hold_after(events, t0, t0 + args.camera_timeout + 0.45)) is not None]
    overshoot = [ms - 1e3 * args.camera_timeout for ms in trip_ms]
    passed = sum(1 for _, hold in events if not hold)
    print(f"gated commands seen: {len(events)} ({passed} passed, {len(events) - passed} holds)")
    print(f"e-stop -> first hold          {stats(estop_ms)}   target p99 < 50 ms")
    print(f"camera stop -> first hold     {stats(trip_ms)}   (camera_timeout_s = {args.camera_timeout:g})")
    print(f"  overshoot beyond the timeout {stats(overshoot)}   target p99 < 200 ms")
    missed = (args.estop_trials - len(estop_ms)) + (args.watchdog_trials - len(trip_ms))
    if missed:
        print(f"WARNING: {missed} trial(s) discarded: no hold in their window, or the gate was already holding")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
