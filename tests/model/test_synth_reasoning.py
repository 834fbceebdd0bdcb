"""Synthesis building blocks without a simulator: grounded reasoning templates, the policy mix, labels, stalls."""
import re

import numpy as np
import pytest

from sole_r1_model.synth.config import SynthConfig
from sole_r1_model.synth.reasoning import cm, describe, observe_changes
from sole_r1_model.synth.rollouts import Episode, SwitchAtProgress, labels_for, plan_episode, van_der_corput
from sole_r1_model.synth.samples import sample_pairs
from sole_r1_model.synth.state import StateSummary, TaskTerms
from sole_r1_model.synth.tasks import TaskRef

PICK = TaskTerms("the cube", "the bin", "pick")


def state(**kw) -> StateSummary:
    base = dict(progress=0.0, success=False, gripper_opening=1.0, hand=(0.0, 0.0, 0.2), hand_to_object=0.15,
                object_to_goal=0.30, object_height=0.0, grasped=False)
    return StateSummary(**{**base, **kw})


def text(prev, cur, p=10, c=30, seed=0, terms=PICK, from_start=False) -> str:
    return describe(terms, prev, cur, p, c, np.random.default_rng(seed), from_start=from_start)


def sentences(reasoning: str) -> int:
    return len([s for s in re.split(r"(?<=[.!?])\s+", reasoning.strip()) if s])


def test_closing_on_the_object_is_called_a_grasp():
    before = state(hand_to_object=0.01, gripper_opening=1.0)
    after = state(hand_to_object=0.01, gripper_opening=0.5, grasped=True)
    kinds = [e.kind for e in observe_changes(PICK, before, after)]
    assert kinds[0] == "grasp"
    assert any(word in text(before, after).lower() for word in ("grasp", "holds", "closed around"))


def test_closing_on_nothing_is_not_a_grasp():
    after = state(gripper_opening=0.4)
    assert [e.kind for e in observe_changes(PICK, state(), after)][0] == "close_empty"


def test_lift_height_is_reported_in_centimetres():
    before = state(hand_to_object=0.005, grasped=True, gripper_opening=0.5, object_height=0.01)
    after = state(hand_to_object=0.005, grasped=True, gripper_opening=0.5, object_height=0.07)
    for seed in range(6):
        reasoning = text(before, after, seed=seed)
        assert "6 cm" in reasoning and "7 cm" in reasoning, reasoning


def test_a_dropped_object_reads_as_a_regression():
    before = state(hand_to_object=0.005, grasped=True, gripper_opening=0.5, object_height=0.08)
    after = state(hand_to_object=0.09, grasped=False, gripper_opening=0.5, object_height=0.0)
    assert observe_changes(PICK, before, after)[0].kind == "drop"
    reasoning = text(before, after, p=60, c=25)
    assert "8 cm" in reasoning and ("fell" in reasoning or "dropped" in reasoning)
    assert re.search(r"(falls back|backwards|drops) .*60% to (about )?25%", reasoning)


def test_distance_to_the_goal_and_what_remains_are_grounded():
    before = state(hand_to_object=0.005, grasped=True, gripper_opening=0.5, object_to_goal=0.30, object_height=0.1)
    after = state(hand_to_object=0.005, grasped=True, gripper_opening=0.5, object_to_goal=0.12, object_height=0.1)
    reasoning = text(before, after)
    assert "18 cm" in reasoning and "12 cm" in reasoning and "the bin" in reasoning


def test_no_motion_reads_as_a_stall():
    reasoning = text(state(), state(), p=20, c=20)
    assert re.search(r"(nothing has changed|not moved|looks the same)", reasoning.lower())
    assert "20%" in reasoning


def test_success_ends_on_100_without_a_todo_list():
    before = state(hand_to_object=0.005, grasped=True, object_to_goal=0.03)
    after = state(hand_to_object=0.005, grasped=True, object_to_goal=0.0, success=True, progress=100.0)
    reasoning = text(before, after, p=90, c=100)
    assert reasoning.endswith("100%.") and "still" not in reasoning


def test_door_handle_turn_and_swing_are_reported_in_degrees():
    door = TaskTerms("the door handle", "the open position", "door")
    shut = dict(object_height=None, grasped=None, hand_to_object=0.01, object_to_goal=0.3, door_angle=0.0)
    turning = text(state(**shut, handle_angle=0.0), state(**shut, handle_angle=30.0), terms=door)
    assert "30 degrees" in turning and "15 degrees more" in turning
    before = state(**{**shut, "door_angle": -0.2}, handle_angle=60.0)
    after = state(**{**shut, "door_angle": 11.0, "object_to_goal": 0.1}, handle_angle=60.0)
    swinging = text(before, after, terms=door)
    assert "from 0 to 11 degrees" in swinging and "-0" not in swinging


def test_reasoning_has_one_to_four_sentences_varies_with_the_seed_and_repeats_with_it():
    rng = np.random.default_rng(7)
    texts = set()
    for i in range(200):
        a, b = (state(hand_to_object=float(rng.uniform(0, 0.2)), object_to_goal=float(rng.uniform(0, 0.3)),
                      object_height=float(rng.uniform(0, 0.1)), grasped=bool(rng.random() < 0.5),
                      gripper_opening=float(rng.uniform(0, 1)), success=bool(rng.random() < 0.1))
                for _ in range(2))
        reasoning = text(a, b, p=int(rng.integers(0, 100)), c=int(rng.integers(0, 101)), seed=i)
        assert 1 <= sentences(reasoning) <= 4, reasoning
        assert "<" not in reasoning and "{" not in reasoning
        texts.add(reasoning)
    assert len(texts) > 150
    a, b = state(), state(hand_to_object=0.1)
    assert text(a, b, seed=3) == text(a, b, seed=3)
    assert len({text(a, b, seed=s) for s in range(12)}) >= 3


def test_cm_formats_small_distances_in_words():
    assert cm(0.004) == "less than 1 cm" and cm(0.126) == "13 cm" and cm(-0.05) == "5 cm"


def test_van_der_corput_mix_gives_a_task_two_different_policies_in_two_episodes():
    assert [van_der_corput(i) for i in range(4)] == [0.0, 0.5, 0.25, 0.75]
    config = SynthConfig(out="x", policy_mix="expert=1,random=1")
    for task in ("a", "b", "c", "d", "e"):
        plans = [plan_episode(config, TaskRef("metaworld", task), i) for i in range(2)]
        assert {p.policy for p in plans} == {"expert", "random"}
    default = SynthConfig(out="x")
    seen = {plan_episode(default, TaskRef("metaworld", "reach-v3"), i).policy for i in range(16)}
    assert seen == set(default.policy_weights())


def test_episode_seeds_depend_on_seed_suite_task_and_index_only():
    config = SynthConfig(out="x")
    a = plan_episode(config, TaskRef("metaworld", "reach-v3"), 3)
    assert a == plan_episode(SynthConfig(out="y", episodes_per_task=99, workers=4), TaskRef("metaworld", "reach-v3"), 3)
    assert a.seed != plan_episode(config, TaskRef("metaworld", "reach-v3"), 4).seed
    assert a.seed != plan_episode(SynthConfig(out="x", seed=1), TaskRef("metaworld", "reach-v3"), 3).seed


def _episode(progress, success):
    plan = plan_episode(SynthConfig(out="x"), TaskRef("metaworld", "reach-v3"), 0)
    states = [state(progress=p, success=s) for p, s in zip(progress, success)]
    return Episode(plan, "Reach.", [None] * len(states), [None] * len(states), states)


def test_time_labels_are_monotone_to_the_first_success_and_failures_keep_privileged():
    ok = _episode([0, 30, 20, 95, 100, 100], [False, False, False, False, True, True])
    assert labels_for(ok, "privileged") == [0, 30, 20, 95, 100, 100]
    assert labels_for(ok, "time") == [0, 25, 50, 75, 100, 100]
    failed = _episode([0, 30, 20], [False, False, False])
    assert labels_for(failed, "time") == [0, 30, 20]


def test_sample_pairs_are_the_official_key_frames_plus_extras_against_their_key_frame():
    pairs = sample_pairs(25, 10, 0, np.random.default_rng(0))
    assert [c for _, c in pairs] == [2, 5, 8, 10, 13, 16, 18, 21, 24] and pairs[0] == (0, 2)
    extra = sample_pairs(25, 10, 3, np.random.default_rng(0))[9:]
    assert len(extra) == 3 and all(p < c and p in (0, 2, 5, 8, 10, 13, 16, 18, 21) for p, c in extra)


class _FakeEnv:
    def __init__(self):
        self.progress = 0.0

    def privileged_progress(self):
        return self.progress


class _Expert:
    def reset(self):
        pass

    def act(self, env, obs):
        env.progress += 10.0
        return np.array([1.0, 0, 0, 0, 0, 0, -1.0])


@pytest.mark.parametrize("threshold", [25.0, 55.0])
def test_stall_follows_the_expert_until_the_threshold_then_holds_still_keeping_the_grip(threshold):
    env, policy = _FakeEnv(), SwitchAtProgress(_Expert(), threshold)
    policy.reset()
    actions = [policy.act(env, None) for _ in range(10)]
    moving = [a for a in actions if a[0] != 0]
    assert len(moving) == int(np.ceil(threshold / 10.0)) and policy.switch_step == len(moving) + 1
    assert all(a[6] == -1.0 and not a[:6].any() for a in actions[len(moving):])


def test_batches_keep_a_task_together_unless_workers_would_idle():
    from sole_r1_model.synth.run import MAX_BATCH, batches

    config = SynthConfig(out="x")
    plans = lambda tasks, n: [plan_episode(config, TaskRef("metaworld", t), i) for t in tasks for i in range(n)]
    few = batches(plans(["a", "b", "c"], 2), workers=2)
    assert sorted(len(b) for b in few) == [2, 2, 2] and all(len({p.ref for p in b}) == 1 for b in few)
    shared = batches(plans(["a"], 20), workers=4)
    assert [len(b) for b in shared] == [5, 5, 5, 5]
    many = batches(plans(["a", "b"], 20), workers=2)
    assert max(len(b) for b in many) == MAX_BATCH and sum(len(b) for b in many) == 40
    assert sorted(p.index for b in many for p in b if p.ref.task == "a") == list(range(20))


def test_brief_style_is_one_fixed_wording_ending_on_the_progress_change():
    before = state(hand_to_object=0.12)
    after = state(hand_to_object=0.04)
    brief = [describe(PICK, before, after, 12, 22, np.random.default_rng(seed), style="brief") for seed in range(5)]
    assert len(set(brief)) == 1                                   # no random wording: the seed does not matter
    assert brief[0].endswith("Progress 12% -> 22%.")
    assert "8 cm" in brief[0] and "4 cm" in brief[0]              # the change and what is left, grounded
    full = [text(before, after, p=12, c=22, seed=seed) for seed in range(5)]
    assert all(len(brief[0]) < len(f) + 10 for f in full) and sentences(brief[0]) == 3


def test_brief_style_on_success_says_the_change_and_the_final_value_only():
    before = state(hand_to_object=0.005, grasped=True, gripper_opening=0.5, object_to_goal=0.03)
    after = state(hand_to_object=0.005, grasped=True, gripper_opening=0.5, object_to_goal=0.0, success=True)
    reasoning = describe(PICK, before, after, 80, 100, np.random.default_rng(0), style="brief")
    assert sentences(reasoning) == 2 and reasoning.endswith("Progress 80% -> 100%.")


def test_an_unknown_reasoning_style_is_refused():
    with pytest.raises(ValueError, match="brief"):
        describe(PICK, state(), state(), 0, 0, np.random.default_rng(0), style="terse")
    with pytest.raises(ValueError, match="reasoning"):
        SynthConfig(out="x", reasoning="terse")


def test_stated_previous_progress_is_the_label_or_a_mistake_at_least_15_points_off():
    from sole_r1_model.synth.samples import stated_previous

    assert all(stated_previous(40, 0.0, np.random.default_rng(s)) == 40 for s in range(50))
    wrong = [stated_previous(40, 1.0, np.random.default_rng(s)) for s in range(200)]
    assert all(abs(v - 40) >= 15 and 0 <= v <= 100 for v in wrong) and len(set(wrong)) > 30
    some = [stated_previous(40, 0.3, np.random.default_rng(s)) != 40 for s in range(1000)]
    assert 0.25 < np.mean(some) < 0.35
    with pytest.raises(ValueError, match="previous_noise"):
        SynthConfig(out="x", previous_noise=1.5)
