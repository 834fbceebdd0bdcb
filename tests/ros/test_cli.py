"""`sole-r1 graph` and `sole-r1 echo` see a running graph like `ros2 node list` / `ros2 topic echo` would."""
import subprocess

from .conftest import SOLE_R1


def test_graph_and_echo_on_a_running_graph(ros, launch_graph):
    from sensor_msgs.msg import Image

    from sole_r1_ros.ros import conventions as conv
    frames = ros.collect(Image, conv.WRIST_IMAGE, conv.SENSOR_QOS)
    launch_graph("video_replay", rate=10.0)
    ros.wait_for(lambda: frames, 30, "the graph to publish")

    listing = subprocess.run([SOLE_R1, "graph", "--wait", "4"], capture_output=True, text=True, timeout=60)
    assert listing.returncode == 0, listing.stderr
    out = listing.stdout
    assert "/video_source" in out and "/stream_monitor" in out
    assert "/cameras/shoulder/image_raw [sensor_msgs/msg/Image]" in out
    assert "/episode/info [sole_r1/msg/EpisodeInfo]" in out

    echoed = subprocess.run([SOLE_R1, "echo", "/cameras/shoulder/image_raw", "-n", "2"], capture_output=True,
                            text=True, timeout=60)
    assert echoed.returncode == 0, echoed.stderr
    assert echoed.stdout.count("---") == 2
    assert "encoding: 'rgb8'" in echoed.stdout and "width: 256" in echoed.stdout
    assert "frame_id: 'shoulder_camera'" in echoed.stdout and "<196608 values" in echoed.stdout


def test_echo_reports_a_missing_topic(ros):
    result = subprocess.run([SOLE_R1, "echo", "/no/such/topic", "--wait", "1"], capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 1 and "not seen on the graph" in result.stdout


def test_launch_help_lists_graph_arguments():
    result = subprocess.run([SOLE_R1, "launch", "video_replay", "--show-args"], capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 0
    assert "rate: frames per second [default 10.0]" in result.stdout


def test_demo_and_the_sim_graphs_default_to_the_embedded_rewarder():
    result = subprocess.run([SOLE_R1, "demo", "--help"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and "default embedded" in result.stdout
    shown = subprocess.run([SOLE_R1, "launch", "sim_metaworld", "--show-args"], capture_output=True, text=True,
                           timeout=60)
    assert shown.returncode == 0 and "[default 'embedded']" in shown.stdout


def test_demo_starts_reach_from_the_shipped_policy_unless_told_otherwise(tmp_path, monkeypatch):
    import argparse

    import yaml

    from sole_r1_ros.commands import demo

    started = []
    monkeypatch.setattr(demo, "GraphRunner", lambda graph: started.append(graph) or argparse.Namespace(run=lambda: 0))
    base = dict(task="reach-v3", rewarder="oracle", steps=10, episode_steps=10, mode="lockstep", image_size=64,
                agent_overrides="batch_size=8", policy="")
    assert demo.run(argparse.Namespace(**base, from_scratch=False, out=str(tmp_path / "a"))) == 0
    arguments = yaml.safe_load((tmp_path / "a" / "config.yaml").read_text())["arguments"]
    assert arguments["init_policy"].endswith("models/policy-reach-v3")
    assert "policy_warmup_updates=500" in arguments["agent_overrides"] and "num_expl_steps=0" in arguments[
        "agent_overrides"]
    assert demo.run(argparse.Namespace(**base, from_scratch=True, out=str(tmp_path / "b"))) == 0
    arguments = yaml.safe_load((tmp_path / "b" / "config.yaml").read_text())["arguments"]
    assert arguments["init_policy"] == "" and arguments["agent_overrides"] == "batch_size=8"
    # no policy ships for other tasks: they start from scratch without a word
    assert demo.shipped_policy("button-press-topdown-v3") == ""
    assert "reward oracle" in demo.policy_note(demo.shipped_policy("reach-v3"))
