"""Marker and diagnostics builders: a left-anchored progress bar coloured by progress, wrapped reasoning, counters."""
import pytest
from diagnostic_msgs.msg import DiagnosticStatus
from visualization_msgs.msg import Marker

from sole_r1.msg import ProgressEstimate
from sole_r1_ros.ros import markers
from sole_r1_ros.logic.reward.stats import DiagnosticsSnapshot


def estimate(progress: float, valid: bool = True, reasoning: str = "", privileged: bool = False):
    msg = ProgressEstimate(progress=progress, valid=valid, reasoning=reasoning, query_index=3, rewarder="sole_r1",
                           privileged=privileged)
    msg.header.stamp.sec = 42
    return msg


def by_id(array):
    return {m.id: m for m in array.markers}


@pytest.mark.parametrize("progress, fraction", [(0.0, 0.0), (25.0, 0.25), (100.0, 1.0), (-40.0, 0.0), (130.0, 1.0)])
def test_bar_fill_is_left_anchored_and_proportional_to_progress(progress, fraction):
    style = markers.MarkerStyle(frame_id="base", origin=(0.5, 0.0, 1.0), length=0.8)
    got = by_id(markers.progress_markers(estimate(progress), style))
    background, fill = got[markers.BACKGROUND_ID], got[markers.FILL_ID]
    assert background.type == fill.type == Marker.CUBE
    assert background.scale.x == pytest.approx(0.8)
    assert fill.scale.x == pytest.approx(max(1e-3, 0.8 * fraction))
    left_edge = fill.pose.position.x - fill.scale.x / 2
    assert left_edge == pytest.approx(background.pose.position.x - background.scale.x / 2)
    assert all(m.header.frame_id == "base" and m.header.stamp.sec == 42 for m in got.values())


def test_colour_goes_from_red_to_green_and_invalid_is_grey():
    red = markers.progress_colour(0.0, True)
    half = markers.progress_colour(50.0, True)
    green = markers.progress_colour(100.0, True)
    assert (red.r, red.g) == (1.0, 0.0) and (green.r, green.g) == (0.0, 1.0)
    assert half.r == pytest.approx(0.5) and half.g == pytest.approx(0.5)
    fill = by_id(markers.progress_markers(estimate(80.0, valid=False)))[markers.FILL_ID]
    assert (fill.color.r, fill.color.g, fill.color.b) == (0.5, 0.5, 0.5)


def test_reasoning_is_wrapped_and_cut_in_a_view_facing_text():
    words = "The gripper is above the red cube and closing around it slowly " * 20
    style = markers.MarkerStyle(frame_id="world", wrap_width=40, max_lines=5)
    got = by_id(markers.progress_markers(estimate(35.0, reasoning=words, privileged=True), style))
    text = got[markers.REASONING_ID]
    assert text.type == Marker.TEXT_VIEW_FACING and text.header.frame_id == "world"
    lines = text.text.split("\n")
    assert len(lines) == 5 and all(len(line) <= 40 for line in lines) and lines[-1].endswith("...")
    assert lines[0].startswith("The gripper is above the red cube")
    label = got[markers.LABEL_ID].text
    assert label.startswith("35%") and "#3" in label and "PRIVILEGED" in label
    assert "invalid" in markers.label_text(estimate(35.0, valid=False))


def test_bad_style_is_rejected():
    with pytest.raises(ValueError, match="frame_id"):
        markers.MarkerStyle(frame_id="")


def snapshot(**changes):
    fields = dict(rewarder="sole_r1", privileged=False, mode="async", episode_id=2, task="Lift", answers=9,
                  invalid=3, errors={"timeout": 1, "exception": 2}, skipped=4, late_discarded=1, queue_depth=1,
                  frames_held=12, frames_seen=30, latency_p50=0.25, latency_last=0.5, last_valid=True)
    fields.update(changes)
    return DiagnosticsSnapshot(**fields)


def test_diagnostics_report_every_counter():
    stamp = estimate(0.0).header.stamp
    array = markers.diagnostics(snapshot(), stamp, "reward_node")
    [status] = array.status
    values = {kv.key: kv.value for kv in status.values}
    assert status.level == DiagnosticStatus.OK and status.name == "reward_node: reward"
    assert values["latency_p50_s"] == "0.2500" and values["latency_last_s"] == "0.5000"
    assert values["invalid_answers"] == "3" and values["errors.timeout"] == "1" and values["errors.exception"] == "2"
    assert values["queue_depth"] == "1" and values["skipped_queries"] == "4" and values["frames_held"] == "12"
    assert values["rewarder"] == "sole_r1" and values["privileged"] == "false"
    assert array.header.stamp.sec == 42


def test_diagnostics_warn_after_an_invalid_answer_and_flag_the_oracle():
    [status] = markers.diagnostics(snapshot(last_valid=False, privileged=True, rewarder="oracle",
                                            latency_p50=float("nan")), estimate(0.0).header.stamp).status
    values = {kv.key: kv.value for kv in status.values}
    assert status.level == DiagnosticStatus.WARN
    assert "PRIVILEGED" in status.message and values["privileged"] == "true" and values["latency_p50_s"] == "nan"
