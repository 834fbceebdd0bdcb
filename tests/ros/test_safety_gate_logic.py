"""SafetyGate logic: e-stop latching, watchdogs, NaN rejection, step limits, workspace box, rate limit, counters."""
from __future__ import annotations

import math

import numpy as np
import pytest

from sole_r1_ros.logic.franka.robot_mode import RobotMode
from sole_r1_ros.logic.safety import CommandDelta, SafetyConfig, SafetyGate

CONFIG = dict(camera_timeout_s=0.5, proprio_timeout_s=0.2, reward_timeout_s=3.0, command_timeout_s=0.4,
              max_translation_m=0.02, max_rotation_rad=0.1, workspace_min=(0.3, -0.2, 0.05),
              workspace_max=(0.7, 0.2, 0.5), max_command_rate_hz=20.0)
EE = np.array([0.5, 0.0, 0.3])


class FakeClock:
    """Injected clock the gate reads when a method gets no explicit time."""

    def __init__(self, t: float = 100.0):
        self.t = t

    def __call__(self) -> float:
        return self.t


def feed_all(gate: SafetyGate, t: float, ee=EE) -> None:
    """Every watched input arrives at time t."""
    gate.on_camera(t)
    gate.on_proprio(t, ee)
    gate.on_reward(t)


def make_gate(**overrides) -> SafetyGate:
    gate = SafetyGate(SafetyConfig(**{**CONFIG, **overrides}))
    feed_all(gate, 0.0)
    return gate


def cmd(translation=(0.0, 0.0, 0.0), rotation=(0.0, 0.0, 0.0), gripper=0.0, episode_id=3) -> CommandDelta:
    return CommandDelta(np.array(translation, float), np.array(rotation, float), gripper, episode_id)


def test_fresh_inputs_and_small_command_pass_unchanged():
    gate = make_gate()
    decision = gate.filter(cmd((0.01, -0.005, 0.002), (0.0, 0.05, 0.0), gripper=-1.0), t=0.01)
    assert not decision.hold and not decision.dropped and decision.reasons == []
    np.testing.assert_allclose(decision.command_out.translation, [0.01, -0.005, 0.002])
    np.testing.assert_allclose(decision.command_out.rotation, [0.0, 0.05, 0.0])
    assert decision.command_out.gripper == -1.0 and decision.command_out.episode_id == 3
    assert gate.counters["forwarded"] == 1


def test_nothing_received_yet_holds_with_every_input_stale():
    gate = SafetyGate(SafetyConfig(**CONFIG))
    decision = gate.filter(cmd((0.01, 0, 0)), t=0.0)
    assert decision.hold
    assert {"stale_camera", "stale_proprio", "stale_reward"} <= set(decision.reasons)
    np.testing.assert_array_equal(decision.command_out.translation, np.zeros(3))
    assert decision.command_out.gripper == 0.0   # a hold never asks the gripper to move


@pytest.mark.parametrize("stale_input, timeout", [("camera", 0.5), ("proprio", 0.2), ("reward", 3.0)])
def test_each_watchdog_trips_hold_only_after_its_timeout(stale_input, timeout):
    gate = make_gate()

    def refresh_others(t):
        if stale_input != "camera":
            gate.on_camera(t)
        if stale_input != "proprio":
            gate.on_proprio(t, EE)
        if stale_input != "reward":
            gate.on_reward(t)

    t_ok = timeout * 0.9
    refresh_others(t_ok)
    assert not gate.filter(cmd(), t=t_ok).hold
    t_late = timeout * 1.1
    refresh_others(t_late)
    decision = gate.filter(cmd(), t=t_late)
    assert decision.hold and decision.reasons == [f"stale_{stale_input}"]
    assert gate.counters[f"stale_{stale_input}"] == 1
    # Fresh data clears the hold without any operator action (unlike the e-stop).
    feed_all(gate, t_late + 0.01)
    assert not gate.filter(cmd(), t=t_late + 0.1).hold


def test_one_dead_camera_of_two_trips_the_camera_watchdog():
    gate = make_gate()
    gate.on_camera(0.6, camera="shoulder")
    gate.on_proprio(0.6, EE)
    gate.on_reward(0.6)
    decision = gate.filter(cmd(), t=0.6)
    assert decision.hold and decision.reasons == ["stale_camera"]
    assert gate.status(0.6)["input_ages_s"]["camera_wrist"] == pytest.approx(0.6)
    with pytest.raises(ValueError, match="unknown camera 'left'"):
        gate.on_camera(0.6, camera="left")


def test_learner_silence_makes_tick_output_hold():
    gate = make_gate()
    gate.filter(cmd(), t=0.0)
    feed_all(gate, 0.3)
    assert gate.tick(0.3) is None                        # learner quiet for 0.3 s < 0.4 s
    feed_all(gate, 0.5)
    decision = gate.tick(0.5)
    assert decision is not None and decision.hold and decision.reasons == ["stale_command"]


def test_tick_holds_when_a_sensor_goes_stale_between_commands():
    gate = make_gate()
    gate.filter(cmd(), t=0.0)
    decision = gate.tick(0.25)                            # proprio last seen at 0.0, timeout 0.2
    assert decision.hold and "stale_proprio" in decision.reasons


def test_estop_latches_until_reset_and_survives_fresh_inputs():
    gate = make_gate()
    gate.trigger_estop("operator pressed the software e-stop")
    for k in range(5):
        t = 0.05 * (k + 1)
        feed_all(gate, t)
        decision = gate.filter(cmd((0.01, 0, 0)), t=t)
        assert decision.hold and decision.reasons == ["estop"]
        assert gate.tick(t).reasons == ["estop"]
    status = gate.status(0.25)
    assert status["estopped"] and status["estop_reason"] == "operator pressed the software e-stop"
    ok, message = gate.reset_estop()
    assert ok and "operator pressed" in message
    feed_all(gate, 0.3)
    assert not gate.filter(cmd(), t=0.3).hold
    assert gate.counters["estop_triggered"] == 1 and gate.counters["estop_reset"] == 1


@pytest.mark.parametrize("stop_mode", [RobotMode.REFLEX, RobotMode.USER_STOPPED])
def test_robot_stop_latches_estop_and_reset_is_refused_while_it_lasts(stop_mode):
    gate = make_gate()
    gate.on_robot_mode(RobotMode.MOVE, 0.0)
    assert not gate.filter(cmd(), t=0.01).hold
    gate.on_robot_mode(int(stop_mode), 0.02)             # as it arrives in FrankaRobotState.robot_mode
    assert gate.estopped and stop_mode.name in gate.status(0.02)["estop_reason"]
    ok, message = gate.reset_estop()
    assert not ok and stop_mode.name in message and "error recovery" in message
    assert gate.estopped
    # The robot recovers (operator released the stop / ran recovery): the latch still needs an explicit reset.
    gate.on_robot_mode("ROBOT_MODE_IDLE", 0.1)
    feed_all(gate, 0.1)
    assert gate.filter(cmd(), t=0.1).reasons == ["estop"]
    ok, _ = gate.reset_estop()
    assert ok and not gate.filter(cmd(), t=0.2).hold


def test_robot_modes_that_cannot_move_hold_without_latching():
    gate = make_gate()
    gate.on_robot_mode("GUIDING", 0.0)
    decision = gate.filter(cmd(), t=0.01)
    assert decision.hold and decision.reasons == ["robot_mode"] and not gate.estopped
    gate.on_robot_mode(99, 0.02)                           # unknown value: counted, treated as not movable
    assert gate.counters["bad_robot_mode"] == 1 and gate.filter(cmd(), t=0.1).hold


@pytest.mark.parametrize("field", ["translation", "rotation", "gripper"])
@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_nonfinite_commands_are_rejected_and_counted(field, bad):
    gate = make_gate()
    values = dict(translation=[0.01, 0.0, 0.0], rotation=[0.0, 0.0, 0.0], gripper=0.5)
    if field == "gripper":
        values["gripper"] = bad
    else:
        values[field][1] = bad
    decision = gate.filter(cmd(**values), t=0.01)
    assert decision.hold and decision.reasons == ["nonfinite_command"]
    assert np.all(np.isfinite(decision.command_out.translation)) and math.isfinite(decision.command_out.gripper)
    assert gate.counters["nonfinite_command"] == 1 and gate.counters["forwarded"] == 0


def test_oversize_steps_are_clipped_to_the_limits_keeping_direction():
    gate = make_gate()
    decision = gate.filter(cmd((0.03, 0.04, 0.0), (0.0, 0.0, -0.5)), t=0.01)
    assert not decision.hold
    assert sorted(decision.reasons) == ["rotation_clipped", "translation_clipped"]
    np.testing.assert_allclose(decision.command_out.translation, [0.012, 0.016, 0.0])   # 0.05 m scaled to 0.02
    np.testing.assert_allclose(decision.command_out.rotation, [0.0, 0.0, -0.1])
    assert gate.counters["translation_clipped"] == 1 and gate.counters["rotation_clipped"] == 1


def test_reject_mode_holds_oversize_steps_instead_of_clipping():
    gate = make_gate(limit_mode="reject")
    decision = gate.filter(cmd((0.0, 0.0, 0.021)), t=0.01)
    assert decision.hold and decision.reasons == ["translation_limit"]
    assert gate.counters["translation_limit"] == 1
    assert not gate.filter(cmd((0.0, 0.0, 0.019)), t=0.1).hold


def test_target_outside_the_workspace_is_clipped_to_the_box():
    gate = make_gate()
    near_wall = np.array([0.695, 0.0, 0.3])              # 5 mm from x max 0.7
    gate.on_proprio(0.0, near_wall)
    decision = gate.filter(cmd((0.02, 0.0, 0.0)), t=0.01)
    assert decision.reasons == ["workspace_clipped"]
    np.testing.assert_allclose(near_wall + decision.command_out.translation, [0.7, 0.0, 0.3])
    assert gate.counters["workspace_clipped"] == 1


def test_from_outside_the_box_the_way_back_is_step_limited():
    gate = make_gate()
    gate.on_proprio(0.0, np.array([0.5, 0.0, 0.6]))      # 10 cm above the box (hand guided there)
    decision = gate.filter(cmd((0.0, 0.0, 0.0)), t=0.01)
    assert "workspace_clipped" in decision.reasons
    np.testing.assert_allclose(decision.command_out.translation, [0.0, 0.0, -0.02])


def test_commands_faster_than_the_rate_limit_are_dropped():
    gate = make_gate()                                    # 20 Hz: at least 50 ms apart
    outcomes = []
    for t in (0.0, 0.02, 0.049, 0.05, 0.06, 0.12):
        outcomes.append(gate.filter(cmd(), t=t).dropped)
    assert outcomes == [False, True, True, False, True, False]
    assert gate.counters["rate_limited"] == 3 and gate.counters["forwarded"] == 3
    dropped = gate.filter(cmd(), t=0.13)
    assert dropped.command_out is None and not dropped.hold and dropped.reasons == ["rate_limited"]


def test_gripper_beyond_range_is_clipped_and_counted():
    gate = make_gate()
    decision = gate.filter(cmd(gripper=-3.0), t=0.01)
    assert decision.command_out.gripper == -1.0 and decision.reasons == ["gripper_clipped"]


def test_nonfinite_proprio_is_ignored_and_counted():
    gate = make_gate()
    gate.on_proprio(0.15, [math.nan, 0.0, 0.3])
    assert gate.counters["bad_proprio"] == 1
    feed_all(gate, 0.15, ee=EE)
    gate.on_proprio(0.3, [0.1, 0.2])                      # wrong length
    assert gate.counters["bad_proprio"] == 2
    assert gate.status(0.3)["input_ages_s"]["proprio"] == pytest.approx(0.15)


def test_injected_clock_is_used_when_no_time_is_given():
    clock = FakeClock(10.0)
    gate = SafetyGate(SafetyConfig(**CONFIG), clock=clock)
    gate.on_camera()
    gate.on_proprio(None, EE)
    gate.on_reward()
    assert not gate.filter(cmd()).hold
    clock.t = 10.3                                        # proprio (0.2 s) is now stale
    assert gate.tick().reasons == ["stale_proprio"]


def test_status_reports_state_and_counters_for_diagnostics():
    gate = make_gate()
    gate.filter(cmd((1.0, 0, 0)), t=0.01)
    gate.trigger_estop("test")
    status = gate.status(0.02)
    assert status["ok"] is False and status["hold_reasons"] == ["estop"]
    assert status["robot_mode"] == "UNKNOWN" and status["robot_stop_active"] is False
    assert status["counters"]["translation_clipped"] == 1 and status["counters"]["estop_triggered"] == 1


@pytest.mark.parametrize("bad, match", [
    (dict(proprio_timeout_s=0.0), "proprio_timeout_s must be > 0"),
    (dict(max_translation_m=math.inf), "cannot be disabled"),
    (dict(limit_mode="warn"), "limit_mode"),
    (dict(workspace_min=(0.8, -0.2, 0.0)), "must be below workspace_max"),
    (dict(workspace_max=(0.7, 0.2)), "3 finite numbers"),
    (dict(motion_modes=("FLYING",)), "unknown robot mode"),
])
def test_invalid_config_is_refused_with_a_clear_message(bad, match):
    with pytest.raises(ValueError, match=match):
        SafetyConfig(**{**CONFIG, **bad})


def test_config_from_dict_rejects_unknown_keys_and_accepts_yaml_lists():
    config = SafetyConfig.from_dict({"workspace_min": [0.2, -0.3, 0.0], "camera_timeout_s": 1.0})
    assert config.workspace_min == (0.2, -0.3, 0.0)
    with pytest.raises(ValueError, match="unknown safety parameter.*camera_timeout\\b"):
        SafetyConfig.from_dict({"camera_timeout": 1.0})


def test_watchdog_can_be_disabled_with_infinity():
    gate = make_gate(reward_timeout_s=math.inf)
    gate.on_camera(100.0)
    gate.on_proprio(100.0, EE)
    assert not gate.filter(cmd(), t=100.0).hold
