"""Point the ROS wheels' CMake exports at this interpreter's real include directories.

Why: 14+ `share/*/cmake/export_*__rosidl_generator_pyExport.cmake` files in the ROS 2 PyPI wheels hard-code the
wheel builder's paths (/opt/python/cp311-cp311/include/python3.11 and its numpy include dir). CMake then refuses
to configure any package that depends on those messages ("Imported target ... includes non-existent path"), and
`-DPython3_*` options do not help because the paths are literals. We rewrite the literals inside the virtual
environment only -- nothing outside it (no system symlinks), so other Pythons and ROS installs are untouched.
Idempotent: files already fixed are left alone.
"""
import glob
import os
import re
import sys
import sysconfig

import numpy


def main() -> int:
    """Rewrite the hard-coded include paths in the venv's ROS CMake exports; print how many files changed."""
    prefix = sys.prefix
    python_include = sysconfig.get_paths()["include"]
    numpy_include = numpy.get_include()
    # Any builder path of the form /opt/python/cpXY-cpXY/... is replaced, whatever the Python minor version.
    python_pattern = re.compile(r"/opt/python/cp3\d+-cp3\d+/include/python3\.\d+")
    numpy_pattern = re.compile(r"/opt/python/cp3\d+-cp3\d+/lib/python3\.\d+/site-packages/numpy/(?:_core|core)/include")
    changed = 0
    for path in glob.glob(os.path.join(prefix, "share", "*", "cmake", "*.cmake")):
        with open(path, encoding="utf-8") as f:
            text = f.read()
        if "/opt/python/" not in text:
            continue
        fixed = numpy_pattern.sub(numpy_include, python_pattern.sub(python_include, text))
        if fixed != text:
            with open(path, "w", encoding="utf-8") as f:
                f.write(fixed)
            changed += 1
    print(f"fix_ros_wheel_cmake: {changed} CMake export file(s) repointed to {python_include} and {numpy_include}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
