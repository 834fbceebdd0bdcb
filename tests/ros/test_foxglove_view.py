"""foxglove_view: a WebSocket client speaking the Foxglove protocol receives camera frames, progress and the CoT."""
import asyncio
import base64
import json
import socket
import struct
import subprocess
import sys
import threading
import time

import aiohttp
import cv2
import numpy as np
import pytest
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from sensor_msgs.msg import Image
from std_msgs.msg import Bool

from sole_r1.msg import ProgressEstimate
from sole_r1_ros.ros import conventions as conv
from sole_r1_ros.ros.images import numpy_to_image

# foxglove-sdk 0.30 serves the protocol under its current name; "foxglove.websocket.v1" is the older name of the
# same protocol (advertise / subscribe / binary message data), offered too as the Foxglove app does.
SUBPROTOCOLS = ["foxglove.sdk.v1", "foxglove.websocket.v1"]
WANTED = {conv.SHOULDER_IMAGE, conv.WRIST_IMAGE, conv.PROGRESS, "/reward/chain_of_thought", conv.ESTOP_STATE}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _protobuf_class(channel: dict):
    """The message class of a protobuf channel, built from the FileDescriptorSet the server advertised."""
    files = descriptor_pb2.FileDescriptorSet.FromString(base64.b64decode(channel["schema"]))
    pool = descriptor_pool.DescriptorPool()
    for file in files.file:
        pool.Add(file)
    return message_factory.GetMessageClass(pool.FindMessageTypeByName(channel["schemaName"]))


async def _receive(port: int, seconds: float) -> tuple[dict, dict]:
    """Subscribe to the wanted advertised channels; return (channels by topic, decoded messages by topic)."""
    channels, received, subscriptions = {}, {}, {}
    async with aiohttp.ClientSession() as session:
        async with session.ws_connect(f"ws://127.0.0.1:{port}", protocols=SUBPROTOCOLS) as ws:
            assert ws.protocol in SUBPROTOCOLS
            deadline = time.monotonic() + seconds
            while time.monotonic() < deadline and set(received) != WANTED:
                try:
                    msg = await ws.receive(timeout=max(0.1, deadline - time.monotonic()))
                except asyncio.TimeoutError:
                    break
                if msg.type == aiohttp.WSMsgType.TEXT:
                    op = json.loads(msg.data)
                    if op["op"] == "advertise":
                        new = [c for c in op["channels"] if c["topic"] in WANTED]
                        for c in new:
                            channels[c["topic"]] = c
                            subscriptions[len(subscriptions) + 1] = c
                        await ws.send_str(json.dumps({"op": "subscribe", "subscriptions": [
                            {"id": sid, "channelId": c["id"]} for sid, c in subscriptions.items() if c in new]}))
                elif msg.type == aiohttp.WSMsgType.BINARY and msg.data[0] == 0x01:  # message data
                    (sid,) = struct.unpack_from("<I", msg.data, 1)
                    channel, payload = subscriptions[sid], msg.data[13:]
                    if channel["encoding"] == "json":
                        received.setdefault(channel["topic"], json.loads(payload))
                    else:
                        received.setdefault(channel["topic"], _protobuf_class(channel).FromString(payload))
    return channels, received


@pytest.mark.slow
def test_a_websocket_client_receives_images_progress_and_chain_of_thought(ros):
    port = _free_port()
    process = subprocess.Popen([sys.executable, "-m", "sole_r1_ros.nodes.foxglove_view", "--ros-args",
                                "-p", f"port:={port}", "-p", "image_format:=png", "-p", "max_image_rate:=0.0"],
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        cameras = {topic: ros.node.create_publisher(Image, topic, conv.IMAGE_PUBLISHER_QOS)
                   for topic in (conv.SHOULDER_IMAGE, conv.WRIST_IMAGE)}
        progress = ros.node.create_publisher(ProgressEstimate, conv.PROGRESS, conv.RELIABLE_QOS)
        estop = ros.node.create_publisher(Bool, conv.ESTOP_STATE, conv.LATCHED_QOS)
        ros.wait_for(lambda: process.poll() is not None or progress.get_subscription_count() > 0, 60,
                     "foxglove_view's subscriptions")
        assert process.poll() is None, process.communicate()[0].decode(errors="replace")[-3000:]
        estop.publish(Bool(data=True))
        frames = {topic: np.random.default_rng(i).integers(0, 255, (40, 56, 3), dtype=np.uint8)
                  for i, topic in enumerate(cameras)}
        result: dict = {}

        def publish():
            while "done" not in result:  # keep publishing while the client connects and subscribes
                stamp = ros.node.get_clock().now().to_msg()
                for topic, pub in cameras.items():
                    pub.publish(numpy_to_image(frames[topic], "rgb8", stamp=stamp, frame_id="cam"))
                estimate = ProgressEstimate(episode_id=3, task="Reach the goal.", progress=42.0, valid=True,
                                            query_index=2, reasoning="The gripper is halfway.", rewarder="tiny")
                estimate.header.stamp = stamp
                progress.publish(estimate)
                time.sleep(0.1)

        publisher = threading.Thread(target=publish, daemon=True)
        publisher.start()
        channels, received = asyncio.run(_receive(port, 30.0))
        result["done"] = True
        publisher.join(5)
    finally:
        process.terminate()
        log = process.communicate(timeout=20)[0].decode(errors="replace")
    assert set(received) == WANTED, (sorted(received), log[-2000:])
    assert channels[conv.SHOULDER_IMAGE]["schemaName"] == "foxglove.CompressedImage"
    for topic in cameras:
        image = received[topic]
        assert image.format == "png" and image.frame_id == "cam"
        decoded = cv2.imdecode(np.frombuffer(image.data, np.uint8), cv2.IMREAD_COLOR)[:, :, ::-1]
        assert np.array_equal(decoded, frames[topic]), f"{topic}: the served frame is the published one"
    estimate = received[conv.PROGRESS]
    assert estimate["progress"] == 42.0 and estimate["valid"] and estimate["episode_id"] == 3
    assert estimate["reasoning"] == "The gripper is halfway." and estimate["rewarder"] == "tiny"
    assert "42%" in received["/reward/chain_of_thought"].message
    assert "The gripper is halfway." in received["/reward/chain_of_thought"].message
    assert received[conv.ESTOP_STATE] == {"estopped": True}


def test_the_saved_layout_shows_only_what_the_node_serves(repo_root):
    from sole_r1_ros.logic.live_view import SCHEMAS
    from sole_r1_ros.nodes.foxglove_view import PROGRESS_LOG

    layout = json.loads((repo_root / "config" / "foxglove" / "sole_r1_layout.json").read_text())
    served = {conv.SHOULDER_IMAGE, conv.WRIST_IMAGE, conv.PROGRESS, PROGRESS_LOG, conv.ROBOT_COMMAND,
              conv.ESTOP_STATE, conv.EPISODE_INFO, conv.EE_POSE}
    fields = {conv.PROGRESS: SCHEMAS["sole_r1.ProgressEstimate"], conv.EPISODE_INFO: SCHEMAS["sole_r1.EpisodeInfo"],
              conv.ESTOP_STATE: SCHEMAS["sole_r1.EStop"]}

    def leaves(node):
        return [node] if isinstance(node, str) else leaves(node["first"]) + leaves(node["second"])

    assert sorted(leaves(layout["layout"])) == sorted(layout["configById"]), "every panel placed, once"
    for panel in layout["configById"].values():
        refs = [panel.get("imageMode", {}).get("imageTopic"), panel.get("topicPath"), panel.get("topicToRender"),
                panel.get("path"), *(p["value"] for p in panel.get("paths", []))]
        for ref in filter(None, refs):
            topic, _, field = ref.partition(".")
            assert topic in served, ref
            assert not field or field in fields[topic], ref
