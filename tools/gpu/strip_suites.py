"""Pack Meta-World and RoboSuite trees stripped to the asset files their tasks open, for a GPU machine's 64 MiB carry.

A GPU call takes the working tree plus carried folders within 64 MiB. The Meta-World wheel is 37 MB and RoboSuite's
157 MB, mostly meshes and textures no task here loads. This script builds every task of the suites named (rendering
one frame) under `strace`, keeps the package's code plus the asset files actually opened, checks that the stripped
tree renders the same first frame, and writes `<out>/<suite>-stripped.tar.xz` (extract into a folder on PYTHONPATH).
Measured: Meta-World 3.1.1, all 50 tasks -> 9.4 MB; RoboSuite 1.5.2, Lift + Stack with the Panda -> 8.6 MB.

    python tools/gpu/strip_suites.py --suite metaworld --out .whl
    python tools/gpu/strip_suites.py --suite robosuite --tasks Lift Stack --out .whl
Needs `strace` and the suites installed in the running venv (make setup).
"""
from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

PROBE = """
import sys, numpy as np
from sole_r1_sim.registry import make_env, list_tasks
suite, tasks = sys.argv[1], sys.argv[2:] or [getattr(t, "name", t) for t in list_tasks(sys.argv[1])]
for task in tasks:
    env = make_env(suite, task, image_size=(32, 32), seed=0)
    observation, _ = env.reset(seed=0)
    env.step(np.zeros(7, dtype=np.float32))
    print(task, float(observation.shoulder.mean()), float(observation.wrist.mean()), flush=True)
    env.close()
"""


def opened_files(suite: str, tasks: list[str], package: Path, pythonpath: str = "") -> tuple[set[Path], str]:
    """Files under `package` opened while building `tasks` (all when empty), and the probe's printed frame means."""
    env = {**os.environ, "MUJOCO_GL": "egl", "PYOPENGL_PLATFORM": "egl",
           "PYTHONPATH": os.pathsep.join(filter(None, [pythonpath, os.environ.get("PYTHONPATH", "")]))}
    with tempfile.TemporaryDirectory() as tmp:
        trace = Path(tmp) / "trace.txt"
        result = subprocess.run(["strace", "-f", "-e", "trace=openat", "-o", str(trace), sys.executable, "-c", PROBE,
                                 suite, *tasks], capture_output=True, text=True, env=env)
        if result.returncode != 0:
            raise SystemExit(f"probe failed:\n{result.stderr[-3000:]}")
        names = re.findall(r'openat\([^"]*"([^"]+)"', trace.read_text(errors="replace"))
    files = {Path(os.path.normpath(name)) for name in names}
    return {f for f in files if package in f.parents and f.is_file()}, result.stdout


def strip(suite: str, tasks: list[str], out: Path) -> Path:
    """Write out/<suite>-stripped.tar.xz and check it renders like the installed package."""
    package = Path(__import__(suite).__file__).resolve().parent
    used, reference = opened_files(suite, tasks, package)
    with tempfile.TemporaryDirectory() as tmp:
        copy = Path(tmp) / package.name
        shutil.copytree(package, copy, ignore=shutil.ignore_patterns("__pycache__", "demos", "scripts"))
        removed = 0
        for path in (copy / ("assets" if suite == "metaworld" else "models/assets")).rglob("*"):
            if path.is_file() and path.suffix != ".xml" and package / path.relative_to(copy) not in used:
                path.unlink()
                removed += 1
        _, stripped = opened_files(suite, tasks, copy, pythonpath=tmp)
        if stripped != reference:
            raise SystemExit(f"the stripped {suite} renders differently:\n{reference}\nvs\n{stripped}")
        archive = out / f"{suite}-stripped.tar.xz"
        with tarfile.open(archive, "w:xz") as tar:
            tar.add(copy, arcname=package.name)
    print(f"{archive}: {archive.stat().st_size / 1e6:.1f} MB ({removed} unused asset files left out)")
    return archive


def main() -> None:
    """Parse flags and write the archive."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--suite", required=True, choices=("metaworld", "robosuite"))
    parser.add_argument("--tasks", nargs="*", default=[], help="tasks to keep (default: every task of the suite)")
    parser.add_argument("--out", type=Path, default=Path(".whl"))
    args = parser.parse_args()
    if shutil.which("strace") is None:
        raise SystemExit("strace not found: apt-get install strace")
    args.out.mkdir(parents=True, exist_ok=True)
    strip(args.suite, args.tasks, args.out)


if __name__ == "__main__":
    main()
