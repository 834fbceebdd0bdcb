"""`sole-r1 estop`: a terminal e-stop. One key (space or Enter) stops the arm; `r` asks for a reset.

    sole-r1 estop            # interactive: [space]/[enter] stop, r reset, q quit; shows the latch state
    sole-r1 estop --trigger  # latch the e-stop once and exit
    sole-r1 estop --reset    # ask the safety gate to release the latch (refused while the robot is stopped)

Stopping uses two paths at once -- the latched /estop topic and the gate's trigger service -- so one lost message
cannot leave the arm moving. rclpy is imported only when the command runs (the GPU image has no ROS).
"""
from __future__ import annotations

import argparse
import select
import sys
import termios
import time
import tty
from typing import Optional


class EstopClient:
    """Publishes /estop and calls the safety gate's trigger/reset services."""

    def __init__(self) -> None:
        import rclpy
        from std_msgs.msg import Bool
        from std_srvs.srv import Trigger

        from sole_r1_ros.ros import conventions as conv

        rclpy.init()
        self._rclpy = rclpy
        self._Bool, self._Trigger = Bool, Trigger
        self.node = rclpy.create_node("_sole_r1_estop")
        self._estop = self.node.create_publisher(Bool, conv.ESTOP, conv.LATCHED_QOS)
        self._trigger = self.node.create_client(Trigger, conv.TRIGGER_ESTOP_SERVICE)
        self._reset = self.node.create_client(Trigger, conv.RESET_ESTOP_SERVICE)
        self.estopped: Optional[bool] = None
        self.node.create_subscription(Bool, conv.ESTOP_STATE, self._on_state, conv.LATCHED_QOS)

    def _on_state(self, msg) -> None:
        self.estopped = bool(msg.data)

    def spin(self, seconds: float) -> None:
        """Process callbacks for a while."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            self._rclpy.spin_once(self.node, timeout_sec=0.02)

    def _call(self, client, timeout: float) -> tuple[bool, str]:
        if not client.wait_for_service(timeout_sec=timeout):
            return False, f"{client.srv_name} not available (is safety_gate running?)"
        future = client.call_async(self._Trigger.Request())
        deadline = time.monotonic() + timeout
        while not future.done() and time.monotonic() < deadline:
            self._rclpy.spin_once(self.node, timeout_sec=0.02)
        if not future.done():
            return False, f"{client.srv_name} did not answer within {timeout:.0f} s"
        return future.result().success, future.result().message

    def trigger(self, timeout: float = 2.0) -> tuple[bool, str]:
        """Latch the e-stop: publish /estop True (latched) and call the trigger service."""
        self._estop.publish(self._Bool(data=True))
        return self._call(self._trigger, timeout)

    def reset(self, timeout: float = 5.0) -> tuple[bool, str]:
        """Ask the gate to release the latch; /estop is set back to False first so it does not re-latch."""
        self._estop.publish(self._Bool(data=False))
        return self._call(self._reset, timeout)

    def close(self) -> None:
        """Destroy the node and shut rclpy down."""
        self.node.destroy_node()
        if self._rclpy.ok():
            self._rclpy.shutdown()


def _interactive(client: EstopClient) -> int:
    if not sys.stdin.isatty():
        print("sole-r1 estop: stdin is not a terminal; use --trigger or --reset", file=sys.stderr)
        return 2
    print("sole-r1 estop: [space]/[enter] = STOP the arm   r = reset   q = quit", flush=True)
    old = termios.tcgetattr(sys.stdin)
    tty.setcbreak(sys.stdin.fileno())
    shown = object()
    try:
        while True:
            client.spin(0.05)
            if client.estopped is not shown:
                shown = client.estopped
                state = {None: "unknown (no safety_gate seen yet)", True: "LATCHED - arm holding",
                         False: "released"}[client.estopped]
                print(f"\r[e-stop] {state}".ljust(60), flush=True)
            if select.select([sys.stdin], [], [], 0.0)[0]:
                key = sys.stdin.read(1)
                if key in (" ", "\n", "\r"):
                    ok, message = client.trigger()
                    print(f"STOP sent: {message}" if ok else f"STOP published on /estop; service: {message}", flush=True)
                elif key.lower() == "r":
                    ok, message = client.reset()
                    print(("reset: " if ok else "reset refused: ") + message, flush=True)
                elif key.lower() == "q":
                    return 0
    except KeyboardInterrupt:
        return 0
    finally:
        termios.tcsetattr(sys.stdin, termios.TCSADRAIN, old)


def run(args: argparse.Namespace) -> int:
    """Entry point of `sole-r1 estop`."""
    client = EstopClient()
    try:
        if args.trigger:
            ok, message = client.trigger(args.timeout)
            client.spin(0.3)  # let the latched sample go out before the node disappears
            print(message)
            return 0 if ok else 1
        if args.reset:
            ok, message = client.reset(args.timeout)
            print(message)
            return 0 if ok else 1
        return _interactive(client)
    finally:
        client.close()


def register(subparsers) -> None:
    """Add the `estop` subcommand."""
    parser = subparsers.add_parser("estop", help="terminal e-stop: one key stops the arm; --trigger / --reset")
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--trigger", action="store_true", help="latch the e-stop and exit")
    group.add_argument("--reset", action="store_true", help="ask the safety gate to release the e-stop")
    parser.add_argument("--timeout", type=float, default=3.0, help="seconds to wait for the safety gate")
    parser.set_defaults(func=run)
