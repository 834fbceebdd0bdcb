"""Answer parsing follows the official get_answer_from_completion rules, with invalid answers carried forward."""
import math

import pytest

from sole_r1_model.parsing import extract_reasoning, parse_answer


def test_reads_percentage_and_reasoning_from_a_well_formed_completion():
    parsed = parse_answer("<think>The gripper moved closer.</think><answer>42%</answer>", 10)
    assert (parsed.progress, parsed.reasoning) == (42, "The gripper moved closer.")
    assert parsed.valid and parsed.error == ""


@pytest.mark.parametrize("text, expected", [
    ("<answer>100</answer>", 100),                 # official traces sometimes omit the %
    ("<answer>-5%</answer>", -5),                  # the system prompt allows negative progress
    ("<answer>\n 7 % \n</answer>", 7),             # DOTALL + strip
    ("<answer>%%12%</answer>", 12),                # every % is removed
    ("<think>x</think><answer>37%</answer", 37),   # cut before the closing '>'
    ("<answer>5</answer> then <answer>9</answer>", 5),  # the first answer counts
])
def test_accepts_the_answer_forms_the_official_parser_accepts(text, expected):
    parsed = parse_answer(text, 0)
    assert parsed.valid and parsed.progress == expected


@pytest.mark.parametrize("text, expected", [("<answer>150%</answer>", 100), ("<answer>-250</answer>", -100)])
def test_clamps_answers_to_plus_minus_100(text, expected):
    assert parse_answer(text, 0).progress == expected


@pytest.mark.parametrize("text", [
    "<think>no answer given</think>",
    "<answer>12.5%</answer>",          # int() rejects it, as in the official code
    "<answer>about 20%</answer>",
    "<answer>37",                      # neither closing form present
    "",
])
def test_unparsable_answers_carry_the_previous_progress_and_are_flagged(text):
    parsed = parse_answer(text, 30)
    assert parsed.progress == 30 and not parsed.valid and parsed.error


def test_non_text_completion_is_an_invalid_answer_not_a_crash():
    parsed = parse_answer(None, 12)
    assert (parsed.progress, parsed.valid) == (12, False) and "NoneType" in parsed.error


def test_non_finite_previous_progress_falls_back_to_zero():
    assert parse_answer("garbage", math.nan).progress == 0
    assert parse_answer("garbage", 400).progress == 100


def test_reasoning_survives_a_completion_cut_inside_think():
    assert extract_reasoning("<think>partial reasoning about the cube") == "partial reasoning about the cube"
    assert extract_reasoning("<think>a</think><answer>3</answer>") == "a"
    assert extract_reasoning("<answer>3</answer>") == ""
