"""Safety gate: the only path from the learner to a robot bridge (pure logic; the ROS node wraps it)."""
from sole_r1_ros.logic.safety.command import CommandDelta
from sole_r1_ros.logic.safety.gate import GateDecision, SafetyConfig, SafetyGate

__all__ = ["CommandDelta", "GateDecision", "SafetyConfig", "SafetyGate"]
