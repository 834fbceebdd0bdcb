"""docker/: every repo path the images and compose copy or mount exists, and every command they run exists.

Docker is not available where tests run, so these checks read the files: COPY/ADD sources (build context = the
repository root), paths relative to the project directory inside the image, compose build contexts and mounted
repo folders, `sole-r1 <subcommand>` names and `ros2 launch sole_r1 <file>` launch files.
"""
from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
DOCKER = REPO / "docker"
DOCKERFILES = sorted(DOCKER.glob("*.Dockerfile"))
COMPOSE = DOCKER / "compose.yaml"
# `sole-r1` subcommands and launch files the project provides (sole_r1_ros/cli.py, launch/).
SUBCOMMANDS = {"launch", "graph", "echo", "score", "prompt", "serve", "estop", "demo"}
LAUNCH_FILES = {"sim.launch.py", "real_franka.launch.py", "franka_bringup.launch.py"}
# Folders created at run time (gitignored outputs), legitimately absent from a fresh checkout.
RUNTIME_OUTPUTS = {"runs"}
# Project directory inside the images; paths below it are repo paths.
PROJECT_DIRS = ("/ros2_ws/src/sole_r1", "/opt/sole_r1", "${SOLE_R1_SRC}", "$SOLE_R1_SRC")


def instructions(path: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of a Dockerfile, continuation lines joined, comments dropped."""
    joined, current = [], ""
    for line in path.read_text().splitlines():
        stripped = line.strip()
        if stripped.startswith("#") or (not stripped and not current):
            continue
        current += " " + stripped.rstrip("\\").strip()
        if not stripped.endswith("\\"):
            joined.append(current.strip())
            current = ""
    if current:
        joined.append(current.strip())
    return [(text.split(None, 1)[0].upper(), text.split(None, 1)[1] if " " in text else "") for text in joined]


def copy_sources(arguments: str) -> list[str]:
    """Sources of a COPY/ADD (exec or shell form), without --flags; empty for multi-stage --from copies."""
    parts = yaml.safe_load(arguments) if arguments.startswith("[") else shlex.split(arguments)
    if any(p.startswith("--from") for p in parts):
        return []
    parts = [p for p in parts if not p.startswith("--")]
    return parts[:-1]


def commands_text() -> list[tuple[str, str]]:
    """(file name, text) of everything the images and compose run."""
    texts = [(p.name, " ".join(yaml.safe_load(args)) if args.startswith("[") else args)   # exec form: a list
             for p in DOCKERFILES for kind, args in instructions(p) if kind in ("RUN", "CMD", "ENTRYPOINT")]
    for name, service in yaml.safe_load(COMPOSE.read_text())["services"].items():
        command = service.get("command")
        if command:
            texts.append((f"compose:{name}", command if isinstance(command, str) else " ".join(command)))
    return texts


def test_docker_folder_has_both_images_and_compose():
    assert {p.name for p in DOCKERFILES} == {"robot_pc.Dockerfile", "reward_gpu.Dockerfile"}
    assert COMPOSE.is_file()


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.name)
def test_every_copied_path_exists_in_the_repo(dockerfile):
    copied = [src for kind, args in instructions(dockerfile) if kind in ("COPY", "ADD") for src in copy_sources(args)]
    assert copied, f"{dockerfile.name} copies nothing from the repository"
    missing = [src for src in copied if not (REPO / src).exists()]
    assert not missing, f"{dockerfile.name} copies paths missing from the repository: {missing}"


def project_relative_text(dockerfile: Path) -> str:
    """Text of the RUN/CMD/ENTRYPOINT/ENV instructions, and where relative paths resolve in the project dir."""
    absolute, relative, workdir = [], [], ""
    for kind, args in instructions(dockerfile):
        if kind == "WORKDIR":
            workdir = args.strip()
        elif kind in ("RUN", "CMD", "ENTRYPOINT", "ENV"):
            absolute.append(args)
            if workdir in PROJECT_DIRS:
                # Relative paths mean the project dir only until the command changes directory.
                relative.append(re.split(r"(?:^|\s)cd\s", args)[0])
    return " ".join(absolute), " ".join(relative)


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.name)
def test_paths_used_in_the_project_dir_exist(dockerfile):
    absolute_text, relative_text = project_relative_text(dockerfile)
    top_level = "|".join(sorted(p.name for p in REPO.iterdir() if not p.name.startswith(".")))
    # A path like requirements/lock.txt (relative, from WORKDIR = project dir) or $SOLE_R1_SRC/config/x.
    relative = re.findall(rf"(?:(?<=[\s\"'=])|^)((?:{top_level})(?:/[\w.\-]+)*)", relative_text)
    under_project = [m for d in PROJECT_DIRS for m in re.findall(re.escape(d) + r"/([\w.\-/]+)", absolute_text)]
    assert relative or under_project, f"{dockerfile.name}: no repo path used from the project dir (parser broken?)"
    missing = sorted({p.rstrip("/") for p in relative + under_project if not (REPO / p.rstrip("/")).exists()})
    assert not missing, f"{dockerfile.name} uses repo paths that do not exist: {missing}"


def test_compose_builds_existing_dockerfiles_and_mounts_existing_repo_folders():
    compose = yaml.safe_load(COMPOSE.read_text())
    for name, service in compose["services"].items():
        build = service.get("build")
        if build:
            context = (DOCKER / build["context"]).resolve()
            assert context == REPO, f"{name}: build context should be the repository root, got {context}"
            assert (context / build["dockerfile"]).is_file(), f"{name}: missing {build['dockerfile']}"
        for volume in service.get("volumes", []):
            host = volume.split(":", 1)[0]
            if host.startswith("."):
                path = (DOCKER / host).resolve()
                assert path.exists() or path.relative_to(REPO).parts[0] in RUNTIME_OUTPUTS, \
                    f"{name}: mounts {host}, which does not exist in the repository"


def test_named_sole_r1_subcommands_exist():
    from sole_r1_ros import cli

    named = [(where, m) for where, text in commands_text() for m in re.findall(r"\bsole-r1\s+([\w-]+)", text)]
    assert named, "neither image runs a sole-r1 command"
    declared = set(cli.build_parser()._subparsers._group_actions[0].choices)
    for where, subcommand in named:
        assert subcommand in SUBCOMMANDS and subcommand in declared, f"{where}: unknown `sole-r1 {subcommand}`"


def test_named_launch_files_exist():
    named = [(where, m) for where, text in commands_text()
             for m in re.findall(r"\bros2\s+launch\s+sole_r1\s+([\w.]+)", text)]
    assert named, "no image runs `ros2 launch sole_r1 ...`"
    for where, launch_file in named:
        assert launch_file in LAUNCH_FILES and (REPO / "launch" / launch_file).is_file(), \
            f"{where}: launch file {launch_file} not in launch/"


def launch_commands() -> list[tuple[str, str, dict]]:
    """(where, launch file, {argument: value}) of every `ros2 launch sole_r1 FILE name:=value ...` compose runs."""
    found = []
    for name, service in yaml.safe_load(COMPOSE.read_text())["services"].items():
        command = service.get("command") or []
        tokens = shlex.split(command) if isinstance(command, str) else list(command)
        for i in range(len(tokens) - 3):
            if tokens[i:i + 3] == ["ros2", "launch", "sole_r1"]:
                args = dict(t.split(":=", 1) for t in tokens[i + 4:] if ":=" in t)
                found.append((f"compose:{name}", tokens[i + 3], args))
    return found


def test_launch_arguments_passed_by_compose_exist():
    from sole_r1_ros.runner.franka_bringup import ARGUMENTS
    from sole_r1_ros.runner.graph import graph_path, load_arguments

    declared = {"real_franka.launch.py": set(load_arguments(graph_path("real_franka"))),
                "franka_bringup.launch.py": {name for name, _, _ in ARGUMENTS}}
    checked = [(where, name, args) for where, name, args in launch_commands() if args]
    assert {name for _, name, _ in checked} == set(declared), checked
    for where, name, args in checked:
        assert set(args) <= declared[name], f"{where}: unknown arguments {set(args) - declared[name]} for {name}"


def test_the_robot_graph_reaches_the_reward_service_compose_starts():
    compose = yaml.safe_load(COMPOSE.read_text())["services"]
    serve = compose["reward_gpu"]["command"]
    port = serve[serve.index("--port") + 1]
    assert compose["reward_gpu"]["ports"] == [f"{port}:{port}"]
    robot_args = next(args for where, name, args in launch_commands() if where == "compose:robot_pc")
    assert robot_args["rewarder_endpoint"].startswith("tcp://") and robot_args["rewarder_endpoint"].endswith(f":{port}")
    from sole_r1_ros.runner.graph import resolve_graph

    graph = resolve_graph("real_franka", {"robot_ip": "x"})
    assert graph.arguments["rewarder"] == "zmq" and graph.arguments["rewarder_endpoint"].endswith(f":{port}")
    # Both robot services run the same image, brought up in order: franka_ros2 first, then the graph.
    assert compose["franka_bringup"]["image"] == compose["robot_pc"]["image"]
    assert compose["robot_pc"]["depends_on"] == ["franka_bringup"]
    assert {a["target_controller"] for w, n, a in launch_commands() if "target_controller" in a} == \
        {"${TARGET_CONTROLLER:-crisp}"}


def test_robot_image_builds_franka_ros2_on_jazzy_as_its_readme_says():
    steps = dict(instructions(DOCKER / "robot_pc.Dockerfile"))
    text = " ".join(args for _, args in instructions(DOCKER / "robot_pc.Dockerfile"))
    assert "ARG ROS_DISTRO=jazzy" in (DOCKER / "robot_pc.Dockerfile").read_text()
    assert steps["FROM"] == "ros:${ROS_DISTRO}-ros-base"
    assert "vcs import src < src/franka_ros2/dependency.repos --recursive --skip-existing" in text
    assert "--skip-keys=zed_wrapper" in text and "-DCMAKE_BUILD_TYPE=Release" in text
    # franka_ros2 builds its own ros2_control so that hardware_interface and controller_manager share one ABI.
    assert "rm -rf src/ros2_control" not in text and "patches/manage_overruns.patch" in text
    assert "crisp_controllers" in text and "franka_robot_state_broadcaster" in text


def test_torch_build_is_chosen_by_the_index_not_by_a_pin_that_clashes():
    # The lock pins the CPU build (torch==X+cpu): used as a constraint it would refuse a CUDA torch.
    script = (REPO / "tools" / "setup" / "install_python_deps.sh").read_text()
    assert "grep -v -i -E '^(ros-|torch==)'" in script and "sed 's/+.*//'" in script
    for dockerfile in DOCKERFILES:
        text = " ".join(args for kind, args in instructions(dockerfile) if kind == "RUN")
        assert "-c requirements/lock.txt" not in text, dockerfile.name


def test_every_compose_variable_is_documented():
    variables = set(re.findall(r"\$\{(\w+)", COMPOSE.read_text())) - {"DISPLAY"}
    docs = (REPO / "docs" / "real_robot.md").read_text()
    assert variables and not {v for v in variables if f"`{v}" not in docs and f"{v}=" not in docs}


# Package names of franka_ros2 v3.4.0 (its package.xml files) and crisp_controllers v1.0.0, read from their trees.
FRANKA_ROS2_V340_PACKAGES = {
    "franka_bringup", "franka_example_controllers", "franka_fr3_moveit_config", "franka_gazebo_bringup",
    "franka_gazebo_hardware", "franka_gripper", "franka_hardware", "franka_mobile", "franka_msgs",
    "franka_robot_state_broadcaster", "franka_ros2", "franka_selfcollision", "franka_semantic_components"}
CRISP_PACKAGES = {"crisp_controllers"}


def test_robot_image_builds_packages_that_exist_upstream():
    text = " ".join(args for kind, args in instructions(DOCKER / "robot_pc.Dockerfile") if kind == "RUN")
    selected = re.search(r"--packages-up-to\s+((?:[\w]+\s+)+)", text + " ").group(1).split()
    assert selected and set(selected) <= FRANKA_ROS2_V340_PACKAGES | CRISP_PACKAGES, selected
    assert "ARG FRANKA_ROS2_REF=v3.4.0" in (DOCKER / "robot_pc.Dockerfile").read_text()
    assert "ARG CRISP_CONTROLLERS_REF=v1.0.0" in (DOCKER / "robot_pc.Dockerfile").read_text()
