"""Message builders for watching the reward: an rviz progress bar with the model's reasoning, and /diagnostics.

Pure functions (no node, no rclpy): ProgressEstimate -> visualization_msgs/MarkerArray, and a
DiagnosticsSnapshot -> diagnostic_msgs/DiagnosticArray.
"""
from __future__ import annotations

import dataclasses
import math
import textwrap

from builtin_interfaces.msg import Time
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from std_msgs.msg import ColorRGBA
from visualization_msgs.msg import Marker, MarkerArray

from sole_r1.msg import ProgressEstimate
from sole_r1_ros.logic.reward.stats import DiagnosticsSnapshot

NAMESPACE = "reward_progress"
BACKGROUND_ID, FILL_ID, LABEL_ID, REASONING_ID = 0, 1, 2, 3
INVALID_GREY = ColorRGBA(r=0.5, g=0.5, b=0.5, a=1.0)
_MIN_SCALE = 1e-3  # rviz rejects zero-size markers; an empty bar is drawn as a sliver


@dataclasses.dataclass
class MarkerStyle:
    """Where and how large the progress bar and its text are drawn (metres, in `frame_id`)."""

    frame_id: str = "base"
    origin: tuple = (0.0, -0.6, 0.9)   # centre of the bar: beside and above a table-top robot's workspace
    length: float = 0.6                # bar length along x at 100 %
    thickness: float = 0.04
    text_height: float = 0.035
    wrap_width: int = 60               # characters per line of reasoning text
    max_lines: int = 12                # longer reasoning is cut with an ellipsis

    def __post_init__(self) -> None:
        if not self.frame_id:
            raise ValueError("frame_id must name the frame the markers are drawn in, e.g. 'base'")
        if len(self.origin) != 3:
            raise ValueError(f"origin must be (x, y, z), got {self.origin!r}")
        if not (self.length > 0 and self.thickness > 0 and self.text_height > 0):
            raise ValueError("length, thickness and text_height must be > 0")
        if self.wrap_width < 10 or self.max_lines < 1:
            raise ValueError("wrap_width must be >= 10 characters and max_lines >= 1")


def progress_colour(progress: float, valid: bool) -> ColorRGBA:
    """Red at 0 % (or below) to green at 100 %; grey for an invalid estimate."""
    if not valid or not math.isfinite(progress):
        return INVALID_GREY
    fraction = min(1.0, max(0.0, progress / 100.0))
    return ColorRGBA(r=1.0 - fraction, g=fraction, b=0.0, a=1.0)


def wrap_reasoning(text: str, width: int = 60, max_lines: int = 12) -> str:
    """The chain of thought as at most `max_lines` lines of `width` characters ("..." when cut)."""
    lines = textwrap.wrap(" ".join(text.split()), width=width)
    if len(lines) > max_lines:
        lines = lines[:max_lines]
        lines[-1] = lines[-1][:max(0, width - 3)] + "..."
    return "\n".join(lines)


def progress_markers(estimate: ProgressEstimate, style: MarkerStyle = MarkerStyle()) -> MarkerArray:
    """Progress bar (background + filled part) and two texts: a label line and the wrapped reasoning."""
    x0, y0, z0 = (float(v) for v in style.origin)
    fraction = min(1.0, max(0.0, estimate.progress / 100.0)) if math.isfinite(estimate.progress) else 0.0
    fill_length = max(_MIN_SCALE, style.length * fraction)

    background = _marker(estimate.header.stamp, style.frame_id, BACKGROUND_ID, Marker.CUBE)
    background.pose.position.x, background.pose.position.y, background.pose.position.z = x0, y0, z0
    background.scale.x, background.scale.y, background.scale.z = style.length, style.thickness, style.thickness
    background.color = ColorRGBA(r=0.2, g=0.2, b=0.2, a=0.4)

    fill = _marker(estimate.header.stamp, style.frame_id, FILL_ID, Marker.CUBE)
    # Left-anchored: the filled part grows from the bar's start, not from its centre.
    fill.pose.position.x = x0 - style.length / 2 + fill_length / 2
    fill.pose.position.y, fill.pose.position.z = y0, z0
    # Slightly fatter than the background so it is drawn on top of it.
    fill.scale.x, fill.scale.y, fill.scale.z = fill_length, style.thickness * 1.1, style.thickness * 1.1
    fill.color = progress_colour(estimate.progress, estimate.valid)

    label = _marker(estimate.header.stamp, style.frame_id, LABEL_ID, Marker.TEXT_VIEW_FACING)
    label.pose.position.x, label.pose.position.y = x0, y0
    label.pose.position.z = z0 + style.thickness + style.text_height
    label.scale.z = style.text_height * 1.3
    label.color = ColorRGBA(r=1.0, g=1.0, b=1.0, a=1.0)
    label.text = label_text(estimate)

    reasoning = _marker(estimate.header.stamp, style.frame_id, REASONING_ID, Marker.TEXT_VIEW_FACING)
    text = wrap_reasoning(estimate.reasoning, style.wrap_width, style.max_lines)
    lines = text.count("\n") + 1
    reasoning.pose.position.x, reasoning.pose.position.y = x0, y0
    # TEXT_VIEW_FACING is centred on its position: lift it by half its height above the label.
    reasoning.pose.position.z = label.pose.position.z + style.text_height * (1.0 + lines * 0.6)
    reasoning.scale.z = style.text_height
    reasoning.color = ColorRGBA(r=0.9, g=0.9, b=0.9, a=1.0)
    reasoning.text = text or " "  # rviz warns about empty text markers
    return MarkerArray(markers=[background, fill, label, reasoning])


def label_text(estimate: ProgressEstimate) -> str:
    """One line: progress, validity, query number and rewarder (PRIVILEGED for the oracle)."""
    state = "" if estimate.valid else " (invalid, last valid value)"
    privileged = " PRIVILEGED" if estimate.privileged else ""
    return f"{estimate.progress:.0f}%{state}  #{estimate.query_index} {estimate.rewarder}{privileged}"


def _marker(stamp: Time, frame_id: str, marker_id: int, marker_type: int) -> Marker:
    marker = Marker(ns=NAMESPACE, id=marker_id, type=marker_type, action=Marker.ADD)
    marker.header.stamp = stamp
    marker.header.frame_id = frame_id
    marker.pose.orientation.w = 1.0
    return marker


def diagnostics(snapshot: DiagnosticsSnapshot, stamp: Time, node_name: str = "reward_node") -> DiagnosticArray:
    """One DiagnosticStatus: OK while answers are valid, WARN after an invalid one; values for every counter."""
    level = DiagnosticStatus.OK if snapshot.last_valid else DiagnosticStatus.WARN
    message = "answers valid" if snapshot.last_valid else "last answer invalid (progress carried forward)"
    if snapshot.privileged:
        message = "PRIVILEGED ORACLE (simulator progress, not a reward model); " + message
    values = {
        "rewarder": snapshot.rewarder,
        "privileged": str(snapshot.privileged).lower(),
        "mode": snapshot.mode,
        "episode_id": str(snapshot.episode_id),
        "task": snapshot.task,
        "answers": str(snapshot.answers),
        "invalid_answers": str(snapshot.invalid),
        "latency_p50_s": _seconds(snapshot.latency_p50),
        "latency_last_s": _seconds(snapshot.latency_last),
        "queue_depth": str(snapshot.queue_depth),
        "skipped_queries": str(snapshot.skipped),
        "late_answers_discarded": str(snapshot.late_discarded),
        "frames_held": str(snapshot.frames_held),
        "frame_pairs_seen": str(snapshot.frames_seen),
    }
    for kind, count in sorted(snapshot.errors.items()):
        values[f"errors.{kind}"] = str(count)
    status = DiagnosticStatus(level=level, name=f"{node_name}: reward", message=message,
                              hardware_id=snapshot.rewarder,
                              values=[KeyValue(key=k, value=v) for k, v in values.items()])
    array = DiagnosticArray(status=[status])
    array.header.stamp = stamp
    return array


def _seconds(value: float) -> str:
    return f"{value:.4f}" if math.isfinite(value) else "nan"
