"""The official SOLE-R1 GPT-5 and Gemini-3-Pro baseline prompts, as the paper's baseline servers send them.

Source: philipmit/sole-r1-model `reward_server/src/reward_server/{gpt.py,gemini.py,constants.py}`. Both servers
read only the external ("front") camera and send, per step, one user turn of
`[question, previous frame, current frame]`: the raw frames, not the SOLE-R1 composite, and the question written
with the model's own previous answer. GPT gets the frames as JPEG (quality 90) data URLs, no system message and
no sampling settings; Gemini gets PIL images (which google-genai sends as PNG), `SYSTEM_PROMPT_GEMINI` as system
instruction and temperature 0, top-k 1, 6000 output tokens, low thinking with thoughts included. Both replace
typographic quotes and dashes in the answer (`API_RESPONSE_REPLACEMENTS`) before parsing it.
"""
from __future__ import annotations

import base64
import io

import numpy as np
from PIL import Image

from sole_r1_model.prompt import format_previous_progress
from sole_r1_model.rewarder import ProgressQuery

_INTRO = (
    "Here is an image containing multiple camera views of a robot attempting to complete a task. "
    "The first image is from the previous timestep. The second image is from the current timestep. "
    "The task description is: {task_description}. "
    "The predicted task progress for the previous timestep was {prev_progress}%. Predict the task progress for the "
    "current timestep. "
)
_FORMAT = (
    "Your final answer MUST BE enclosed within <answer> </answer> tags and should be an integer representing current "
    "task progress percentage. "
    "Example output format: <think>[detailed reasoning process]</think><answer>[current task progress]%</answer>"
)
USER_PROMPT_TEMPLATE_GPT = (
    _INTRO
    + "Before providing your final answer, first briefly provide a few sentences that reason about what is happening "
    "at the current timestep relative to the previous timestep. "
    "Your reasoning process should be no more than a few sentences and MUST BE enclosed within <think> </think> "
    "tags. Please refer to the images as timesteps instead of as separate images. "
    + _FORMAT
)
USER_PROMPT_TEMPLATE_GEMINI = (
    _INTRO
    + "Note that the previous progress value might not be accurate. Please carefully assess the images to determine "
    "the correct progress for the current timestep. "
    "Also note that the performance of the robot is unknown so progress can increase or decrease at any timestep. "
    "Before providing your final answer, first briefly provide a few words that reason about what is happening at "
    "the current timestep relative to the previous timestep. "
    "Your reasoning process should be no more than one or two sentences and MUST BE enclosed within <think> </think> "
    "tags. IMPORTANT: Do not refer to 'the user' in your reasoning. Only reason as though it is an internal "
    "monologue thinking about the robot. If you are unsure about the progress, please try to avoid overestimation "
    "and provide a conservative estimate. Please refer to the images as timesteps instead of as separate images. "
    + _FORMAT
)
SYSTEM_PROMPT_GEMINI = (
    "You are an expert roboticist with the goal of predicting task progress percentages given frames from a video "
    "of a robot attempting to complete a task."
)
API_RESPONSE_REPLACEMENTS = {
    "\u2018": "'", "\u2019": "'",  # single quotes
    "\u201c": '"', "\u201d": '"',  # double quotes
    "\u2013": "-", "\u2014": "-",  # en and em dash
}
JPEG_QUALITY = 90  # the GPT server's `image_to_base64` quality


def baseline_question(template: str, query: ProgressQuery) -> str:
    """The baseline question for one query: its task and the rewarder's previous answer as an integer."""
    return template.format(task_description=query.task,
                           prev_progress=format_previous_progress(query.previous_progress))


def baseline_frames(query: ProgressQuery) -> tuple[np.ndarray, np.ndarray]:
    """The (previous, current) external frames: the only images the baseline servers send."""
    _, previous, current = query.external
    return previous, current


def normalize_api_text(text: str) -> str:
    """The answer with typographic quotes and dashes made ASCII, as the baseline servers do before parsing."""
    for source, target in API_RESPONSE_REPLACEMENTS.items():
        text = text.replace(source, target)
    return text


def jpeg_data_url(image: np.ndarray, quality: int = JPEG_QUALITY) -> str:
    """An RGB uint8 image as a `data:image/jpeg;base64,...` URL (the GPT baseline's encoding)."""
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="JPEG", quality=quality)
    return "data:image/jpeg;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")
