"""ROS 2 node entry modules: one module per executable (each exposes main())."""
import signal
import sys
import threading


def stop_quietly_on_sigint() -> None:
    """Make a Ctrl-C that arrives while a node is still importing (torch takes seconds) a quiet exit 0.

    Once running, rclpy's own handler takes over (run_node turns the shutdown into a clean stop).
    """
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, lambda *_: sys.exit(0))


# `python -m sole_r1_ros.nodes.<node>` imports this package first, with sys.argv[0] == "-m" while it does
# (the launch_ros scripts of CMakeLists.txt call stop_quietly_on_sigint themselves).
if sys.argv[:1] == ["-m"]:
    stop_quietly_on_sigint()
