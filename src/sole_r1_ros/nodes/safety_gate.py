"""safety_gate: the only node that talks to a robot bridge (simulated or real).

Learner commands (/learner/command) go through `SafetyGate.filter`: NaN/inf rejected, per-step limits, workspace
box, rate limit. While the e-stop is latched, the robot reports a stop, or any watched input (cameras, EE pose,
reward, learner commands) is stale, the gate sends holds instead (also on a timer, so a silent learner still gets
the robot held). The e-stop latches from /estop (Bool True), the trigger service, or a robot stop mode, and is
released only by the reset service. Every intervention is counted on /diagnostics.

Watchdogs, rate limit and timers run on a steady clock, not ROS time: a paused or replayed /clock
(use_sim_time) must neither freeze the watchdogs nor make inputs look fresher than they are.
"""
from __future__ import annotations

import dataclasses
from typing import Optional

from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus
from geometry_msgs.msg import PoseStamped
from rclpy.clock import Clock, ClockType
from rclpy.node import Node
from sensor_msgs.msg import Image
from std_msgs.msg import Bool, String
from std_srvs.srv import Trigger
from visualization_msgs.msg import Marker

from sole_r1.msg import EEDeltaCommand, ProgressEstimate
from sole_r1_ros.ros import conventions as conv
from sole_r1_ros.ros.conventions import param
from sole_r1_ros.ros.msg_convert import command_from_msg, command_to_msg, pose_to_arrays
from sole_r1_ros.logic.safety.gate import GateDecision, SafetyConfig, SafetyGate


@dataclasses.dataclass
class GateNodeConfig:
    """Node-level parameters of safety_gate (the safety limits themselves are SafetyConfig's fields)."""

    hold_rate_hz: float = param(50.0, "watchdog check rate; holds are sent at this rate while holding (Hz)",
                                low=1.0, high=1000.0)
    diagnostics_period_s: float = param(1.0, "seconds between /diagnostics messages", low=0.05, high=60.0)
    base_frame: str = param("base", "frame of commands and of the workspace marker")


class SafetyGateNode(Node):
    """ROS adapter around SafetyGate."""

    def __init__(self) -> None:
        super().__init__("safety_gate")
        self.node_config = conv.declare_config(self, GateNodeConfig)
        self.gate = SafetyGate(conv.declare_config(self, SafetyConfig))   # its default clock: time.monotonic
        cfg = self.node_config
        self._estopped_published: Optional[bool] = None
        self._out = self.create_publisher(EEDeltaCommand, conv.ROBOT_COMMAND, conv.RELIABLE_QOS)
        self._estop_state = self.create_publisher(Bool, conv.ESTOP_STATE, conv.LATCHED_QOS)
        self._diagnostics = self.create_publisher(DiagnosticArray, conv.DIAGNOSTICS, conv.RELIABLE_QOS)
        self._workspace = self.create_publisher(Marker, conv.SAFETY_WORKSPACE, conv.LATCHED_QOS)
        self.create_subscription(EEDeltaCommand, conv.LEARNER_COMMAND, self._on_command, conv.RELIABLE_QOS)
        for name, topic in (("shoulder", conv.SHOULDER_IMAGE), ("wrist", conv.WRIST_IMAGE)):
            if name in self.gate.config.cameras:
                self.create_subscription(Image, topic, lambda _m, n=name: self.gate.on_camera(camera=n),
                                         conv.IMAGE_SUBSCRIBER_QOS)
        self.create_subscription(PoseStamped, conv.EE_POSE, self._on_pose, conv.RELIABLE_QOS)
        self.create_subscription(ProgressEstimate, conv.PROGRESS, lambda _m: self.gate.on_reward(), conv.RELIABLE_QOS)
        self.create_subscription(String, conv.ROBOT_MODE, lambda m: self._after(self.gate.on_robot_mode, m.data),
                                 conv.LATCHED_QOS)
        self.create_subscription(Bool, conv.ESTOP, self._on_estop, conv.LATCHED_QOS)
        self.create_service(Trigger, conv.TRIGGER_ESTOP_SERVICE, self._on_trigger)
        self.create_service(Trigger, conv.RESET_ESTOP_SERVICE, self._on_reset)
        steady = Clock(clock_type=ClockType.STEADY_TIME)
        self.create_timer(1.0 / cfg.hold_rate_hz, self._tick, clock=steady)
        self.create_timer(cfg.diagnostics_period_s, self._publish_diagnostics, clock=steady)
        self._publish_estop_state()
        self._publish_workspace()
        limits = self.gate.config
        self.get_logger().info(
            f"gating {conv.LEARNER_COMMAND} -> {conv.ROBOT_COMMAND}: max {limits.max_translation_m} m / "
            f"{limits.max_rotation_rad} rad per step, box {limits.workspace_min}..{limits.workspace_max}, "
            f"{limits.max_command_rate_hz} Hz max")

    def _after(self, update, *args) -> None:
        """Apply an input that may latch the e-stop, then publish the latch state if it changed."""
        update(*args)
        self._publish_estop_state()

    def _on_pose(self, msg: PoseStamped) -> None:
        position, _ = pose_to_arrays(msg)
        self.gate.on_proprio(None, position)

    def _on_command(self, msg: EEDeltaCommand) -> None:
        decision = self.gate.filter(command_from_msg(msg))
        self._send(decision, msg.header.stamp)
        if decision.reasons and not decision.dropped:
            self.get_logger().warn(f"intervention: {', '.join(decision.reasons)}", throttle_duration_sec=2.0)

    def _tick(self) -> None:
        decision = self.gate.tick()
        if decision is not None:
            self._send(decision, self.get_clock().now().to_msg())

    def _send(self, decision: GateDecision, stamp) -> None:
        if decision.dropped:
            return
        self._out.publish(command_to_msg(decision.command_out, hold=decision.hold, stamp=stamp,
                                         frame_id=self.node_config.base_frame))
        self._publish_estop_state()

    def _on_estop(self, msg: Bool) -> None:
        if msg.data:  # False on /estop does not release the latch: only the reset service does
            self._after(self.gate.trigger_estop, "/estop topic")
            self._tick()  # hold right away, not at the next timer tick

    def _on_trigger(self, _request, response):
        self._after(self.gate.trigger_estop, "trigger service")
        self._tick()
        response.success, response.message = True, "e-stop latched"
        return response

    def _on_reset(self, _request, response):
        response.success, response.message = self.gate.reset_estop()
        self._publish_estop_state()
        return response

    def _publish_estop_state(self) -> None:
        if self.gate.estopped != self._estopped_published:
            self._estopped_published = self.gate.estopped
            self._estop_state.publish(Bool(data=self.gate.estopped))

    def _publish_workspace(self) -> None:
        lo, hi = self.gate.config.workspace_min, self.gate.config.workspace_max
        marker = Marker(ns="safety", id=0, type=Marker.CUBE, action=Marker.ADD)
        marker.header.frame_id = self.node_config.base_frame
        marker.pose.position.x, marker.pose.position.y, marker.pose.position.z = ((a + b) / 2 for a, b in zip(lo, hi))
        marker.pose.orientation.w = 1.0
        marker.scale.x, marker.scale.y, marker.scale.z = (b - a for a, b in zip(lo, hi))
        marker.color.r, marker.color.g, marker.color.b, marker.color.a = 0.2, 0.6, 1.0, 0.15
        self._workspace.publish(marker)

    def _publish_diagnostics(self) -> None:
        status = self.gate.status()
        level = DiagnosticStatus.OK if status["ok"] else (
            DiagnosticStatus.ERROR if status["estopped"] else DiagnosticStatus.WARN)
        message = "ok" if status["ok"] else "holding: " + ", ".join(status["hold_reasons"])
        values = {"estopped": status["estopped"], "estop_reason": status["estop_reason"],
                  "robot_mode": status["robot_mode"]}
        values.update({f"age_{k}_s": "never" if v is None else f"{v:.3f}" for k, v in status["input_ages_s"].items()})
        values.update({f"count_{k}": v for k, v in sorted(status["counters"].items())})
        array = conv.diagnostics(self, "safety_gate", level, message, values)
        self._diagnostics.publish(array)


def main(args: Optional[list[str]] = None) -> int:
    """Run the safety_gate node."""
    return conv.run_node(SafetyGateNode, args)


if __name__ == "__main__":
    raise SystemExit(main())
