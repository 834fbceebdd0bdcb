"""A plain `colcon build` of the repository (no --symlink-install) and graphs run from the installed tree only.

What a ROS user gets: the package built into a fresh workspace, then the installed node executables
(install/sole_r1/lib/sole_r1/<node>) started by the installed runner against install/sole_r1/share/sole_r1/config --
with the source checkout out of reach (another working directory, the installed packages first on PYTHONPATH).
launch_ros is not installable here; the installed runner starts the same graphs the launch files do.
"""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from geometry_msgs.msg import PoseStamped

from sole_r1.msg import EEDeltaCommand, EpisodeInfo, ProgressEstimate
from sole_r1_model.rewarder import ProgressResult, Rewarder
from sole_r1_model.serve_official import OfficialRewardServer, OfficialRewardService
from sole_r1_ros.ros import conventions as conv

from .franka_testlib import franka_msgs_env

REPO = Path(__file__).resolve().parents[2]
PACKAGE_FILES = ("CMakeLists.txt", "package.xml", "src", "launch", "config", "models")
VENV = Path(sys.prefix)
PYTHON_DIR = f"python{sys.version_info.major}.{sys.version_info.minor}"


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    """Build the package with a plain colcon build into a new workspace; return its install/sole_r1 prefix."""
    workspace = tmp_path_factory.mktemp("ws")
    source = workspace / "src" / "sole_r1"
    source.mkdir(parents=True)
    for name in PACKAGE_FILES:
        copy = shutil.copytree if (REPO / name).is_dir() else shutil.copy2
        copy(REPO / name, source / name, **({"ignore": shutil.ignore_patterns("__pycache__")}
                                            if (REPO / name).is_dir() else {}))
    env = {k: v for k, v in os.environ.items() if k not in ("AMENT_PREFIX_PATH", "CMAKE_PREFIX_PATH",
                                                            "COLCON_PREFIX_PATH", "SOLE_R1_SHARE_DIR")}
    env.update(AMENT_PREFIX_PATH=str(VENV), CMAKE_PREFIX_PATH=str(VENV), PATH=f"{VENV / 'bin'}:{env['PATH']}")
    result = subprocess.run([str(VENV / "bin" / "colcon"), "build", "--event-handlers", "console_direct-",
                             "--cmake-args", "-DBUILD_TESTING=OFF", f"-DPython3_EXECUTABLE={sys.executable}"],
                            cwd=workspace, env=env, capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, (result.stdout + result.stderr)[-4000:]
    prefix = workspace / "install" / "sole_r1"
    assert not (prefix / "lib" / PYTHON_DIR / "site-packages" / "sole_r1_ros").is_symlink()
    return prefix


def installed_env(prefix: Path, base: dict | None = None) -> dict:
    """Environment that sees the installed package and never the source checkout."""
    env = {k: v for k, v in (base or os.environ).items()
           if k not in ("SOLE_R1_SHARE_DIR", "SOLE_R1_CONFIG_DIR", "_ROS_WHEELS_BOOTSTRAP_COMPLETE")}
    site = prefix / "lib" / PYTHON_DIR / "site-packages"
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(site), env.get("PYTHONPATH", "")) if p)
    env["LD_LIBRARY_PATH"] = os.pathsep.join(p for p in (str(prefix / "lib"), env.get("LD_LIBRARY_PATH", "")) if p)
    env["AMENT_PREFIX_PATH"] = f"{prefix}{os.pathsep}{VENV}"
    return env


class InstalledGraph:
    """`python -m sole_r1_ros.cli launch GRAPH` from the installed tree, run outside the checkout."""

    def __init__(self, prefix: Path, graph: str, args: dict, cwd: Path, env: dict):
        self.log_path = cwd / f"{graph}.log"
        self._log = open(self.log_path, "wb")
        command = [sys.executable, "-m", "sole_r1_ros.cli", "launch", graph, *[f"{k}:={v}" for k, v in args.items()],
                   "--grace-period", "5"]
        self.process = subprocess.Popen(command, cwd=cwd, env=env, stdout=self._log, stderr=subprocess.STDOUT,
                                        start_new_session=True)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def node_commands(self) -> list[str]:
        import psutil

        return [" ".join(p.cmdline()) for p in psutil.Process(self.process.pid).children(recursive=True)]

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
        try:
            return self.process.wait(60)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            return -9
        finally:
            self._log.close()


@pytest.mark.slow
def test_installed_tree_finds_its_config_executables_and_libraries(installed, tmp_path):
    probe = ("import sole_r1_config, sole_r1_ros, sole_r1_sim.registry as r, sole_r1_model.rewarders.config as c\n"
             "from sole_r1_config.paths import config_dir, installed_executable\n"
             "print(sole_r1_ros.__file__); print(config_dir()); print(installed_executable('franka_bridge'))\n"
             "print('reach-v3' in r.list_tasks('metaworld')); print(c.resolve_spec('zmq')[0])\n"
             "print(c.resolve_spec('embedded')[1].model)\n")
    result = subprocess.run([sys.executable, "-c", probe], cwd=tmp_path, env=installed_env(installed),
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-3000:]
    module, config, executable, task_found, backend, embedded = result.stdout.split()
    assert module.startswith(str(installed)) and config == str(installed / "share" / "sole_r1" / "config")
    assert executable == str(installed / "lib" / "sole_r1" / "franka_bridge")
    assert task_found == "True" and backend == "zmq"
    assert embedded == str(installed / "share" / "sole_r1" / "models" / "embedded")   # the shipped rewarder
    assert (installed / "share" / "sole_r1" / "launch" / "franka_bringup.launch.py").is_file()
    assert (installed / "share" / "sole_r1" / "source_dir").is_file()


@pytest.mark.slow
def test_installed_sim_graph_runs_with_messages_flowing(installed, ros, tmp_path):
    progress = ros.collect(ProgressEstimate, conv.PROGRESS)
    episodes = ros.collect(EpisodeInfo, conv.EPISODE_INFO, conv.EPISODE_SUBSCRIBER_QOS)
    graph = InstalledGraph(installed, "sim_metaworld", {
        "rewarder": "oracle", "image_size": 64, "episode_steps": 20, "total_steps": 40, "reward_every": 5,
        "run_dir": str(tmp_path / "run"), "agent_overrides": "image_size=64 batch_size=8"}, tmp_path,
        installed_env(installed))
    try:
        ros.wait_for(lambda: any(m.valid for _, m in progress), 300.0, f"reward estimates ({graph.log_path})")
        assert all(str(installed / "lib" / "sole_r1") in c for c in graph.node_commands() if "sole_r1" in c), \
            graph.node_commands()
        code = graph.process.wait(400)
    finally:
        graph.stop()
    assert code == 0, graph.log()[-4000:]
    assert any(m.event == EpisodeInfo.EVENT_ENDED for _, m in episodes)


class AnsweringRewarder(Rewarder):
    """The reward box's stand-in: answers previous + 5 in the official completion format."""

    name = "answering"

    def _score(self, queries):
        return [ProgressResult(progress=q.previous_progress + 5,
                               raw_text=f"<think>ok</think><answer>{int(q.previous_progress) + 5}%</answer>")
                for q in queries]


@pytest.mark.slow
def test_installed_real_franka_graph_on_the_twin_with_the_zmq_reward_server(installed, ros, tmp_path):
    server = OfficialRewardServer(OfficialRewardService(AnsweringRewarder()), "127.0.0.1", 0)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    poses = ros.collect(PoseStamped, conv.EE_POSE)
    progress = ros.collect(ProgressEstimate, conv.PROGRESS)
    gated = ros.collect(EEDeltaCommand, conv.ROBOT_COMMAND)
    graph = InstalledGraph(installed, "real_franka", {
        "robot_ip": "none", "use_fake_hardware": "true", "rewarder_endpoint": server.address, "record": "false",
        "reward_timeout_s": 60.0, "run_dir": str(tmp_path / "run"), "episode_steps": 30}, tmp_path,
        installed_env(installed, franka_msgs_env()))
    try:
        ros.wait_for(lambda: poses, 180.0, f"/robot/ee_pose from the installed bridge ({graph.log_path})")
        ros.wait_for(lambda: any(m.valid and m.rewarder == "zmq" for _, m in progress), 180.0,
                     f"zmq reward estimates ({graph.log_path})")
        ros.wait_for(lambda: any(not m.hold for _, m in gated), 240.0, f"gated learner commands ({graph.log_path})")
        assert graph.process.poll() is None, graph.log()[-4000:]
    finally:
        code = graph.stop()
        server.stop()
        thread.join(5)
    assert code == 0, graph.log()[-4000:]
