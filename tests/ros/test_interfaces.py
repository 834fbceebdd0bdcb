"""The generated sole_r1 interfaces import in the venv and round-trip between two processes over DDS."""
import math
import subprocess
import sys
from pathlib import Path

import pytest
from rclpy.serialization import deserialize_message, serialize_message

from sole_r1.msg import EEDeltaCommand, EpisodeInfo, ProgressEstimate
from sole_r1.srv import QueryProgress, ResetEpisode
from sole_r1_ros.ros import conventions as conv
from sole_r1_ros.ros.images import numpy_to_image

PEER = Path(__file__).with_name("peers") / "interface_peer.py"


def test_fields_match_the_design_contract():
    assert set(ProgressEstimate.get_fields_and_field_types()) >= {
        "header", "episode_id", "task", "progress", "reasoning", "raw_text", "valid", "query_index", "frames_used",
        "latency", "rewarder", "privileged"}
    assert EEDeltaCommand.get_fields_and_field_types()["translation"] == "geometry_msgs/Vector3"
    assert EEDeltaCommand.get_fields_and_field_types()["rotation"] == "geometry_msgs/Vector3"
    assert (EpisodeInfo.EVENT_STARTED, EpisodeInfo.EVENT_STEP, EpisodeInfo.EVENT_ENDED) == (0, 1, 2)
    assert QueryProgress.Request.get_fields_and_field_types()["external_frames"] == "sequence<sensor_msgs/Image>"
    assert QueryProgress.Response.get_fields_and_field_types()["estimate"] == "sole_r1/ProgressEstimate"
    assert ResetEpisode.Request.get_fields_and_field_types()["seed"] == "int64"


def test_serialisation_round_trip_keeps_every_field():
    import numpy as np
    request = QueryProgress.Request(task="stack", previous_progress=12.5,
                                    external_frames=[numpy_to_image(np.full((4, 6, 3), 9, np.uint8))] * 2)
    back = deserialize_message(serialize_message(request), QueryProgress.Request)
    assert back.task == "stack" and back.previous_progress == 12.5 and len(back.external_frames) == 2
    assert bytes(back.external_frames[1].data) == bytes([9]) * 72


@pytest.fixture
def peer():
    process = subprocess.Popen([sys.executable, str(PEER)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    yield process
    process.terminate()
    process.wait(10)


def test_messages_and_services_cross_processes(ros, peer):
    progress = ros.collect(ProgressEstimate, "/test/progress")
    infos = ros.collect(EpisodeInfo, "/test/info")
    publisher = ros.node.create_publisher(EEDeltaCommand, "/test/command", conv.RELIABLE_QOS)
    ros.wait_for(lambda: publisher.get_subscription_count() > 0, 20, "the peer's subscription")
    command = EEDeltaCommand(episode_id=5, gripper=1.0)
    command.translation.x = 0.25
    command.header.frame_id = "base"
    ros.wait_for(lambda: publisher.publish(command) or progress, 10, "a ProgressEstimate from the peer")
    answer = progress[-1][1]
    assert (answer.progress, answer.episode_id, answer.reasoning, answer.query_index) == (25.0, 5, "rrr", 7)
    assert answer.header.frame_id == "base" and answer.valid
    ros.wait_for(lambda: infos, 5, "an EpisodeInfo")
    info = infos[-1][1]
    assert info.true_success and info.event == EpisodeInfo.EVENT_ENDED and math.isnan(info.privileged_progress)

    client = ros.node.create_client(ResetEpisode, "/test/reset")
    response = ros.call(client, ResetEpisode.Request(task_name="reach-v3", seed=3))
    assert response.success and response.episode_id == 44 and response.instruction == "default instruction"
    assert response.message == "reset to reach-v3 seed 3"
