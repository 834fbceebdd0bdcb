"""Image transport between two processes: rate and latency p50/p99 of 2 camera streams at 30 Hz.

    .venv/bin/python benchmarks/image_transport.py [--seconds 5] [--transports default LARGE_DATA]

A publisher process sends shoulder + wrist rgb8 images (same stamp) at the set rate, with the project's publisher
QoS; this process subscribes with the sensor-data QoS the nodes use and measures (receive time - stamp).
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time

import numpy as np

SIZES = [(128, 128), (480, 640)]


def publish(height: int, width: int, rate: float, seconds: float) -> None:
    """Publisher role (runs in the child process)."""
    import rclpy
    from sensor_msgs.msg import Image

    from sole_r1_ros.ros import conventions as conv
    from sole_r1_ros.ros.images import numpy_to_image

    rclpy.init()
    node = rclpy.create_node("bench_image_publisher")
    pubs = [node.create_publisher(Image, t, conv.IMAGE_PUBLISHER_QOS) for t in (conv.SHOULDER_IMAGE, conv.WRIST_IMAGE)]
    frame = np.random.default_rng(0).integers(0, 256, (height, width, 3), dtype=np.uint8)
    deadline = time.monotonic() + seconds
    next_tick = time.monotonic()
    while time.monotonic() < deadline:
        stamp = node.get_clock().now().to_msg()
        for pub in pubs:
            pub.publish(numpy_to_image(frame, "rgb8", stamp=stamp))
        next_tick += 1.0 / rate
        time.sleep(max(0.0, next_tick - time.monotonic()))
    node.destroy_node()
    rclpy.shutdown()


def measure(height: int, width: int, rate: float, seconds: float, transport: str, qos_name: str) -> dict:
    """Run one publisher process and subscribe here; returns rate and latency statistics."""
    import rclpy
    from rclpy.time import Time
    from sensor_msgs.msg import Image

    from sole_r1_ros.ros import conventions as conv

    env = dict(os.environ)
    if transport != "default":
        env["FASTDDS_BUILTIN_TRANSPORTS"] = transport
        os.environ["FASTDDS_BUILTIN_TRANSPORTS"] = transport  # both sides must agree (see docs/performance.md)
    else:
        env.pop("FASTDDS_BUILTIN_TRANSPORTS", None)
        os.environ.pop("FASTDDS_BUILTIN_TRANSPORTS", None)
    rclpy.init()
    node = rclpy.create_node("bench_image_subscriber")
    latencies: dict[str, list] = {conv.SHOULDER_IMAGE: [], conv.WRIST_IMAGE: []}

    def callback(topic):
        def on_image(msg):
            latencies[topic].append((node.get_clock().now() - Time.from_msg(msg.header.stamp)).nanoseconds * 1e-6)
        return on_image

    for topic in latencies:
        qos = conv.SENSOR_QOS if qos_name == "sensor" else conv.IMAGE_SUBSCRIBER_QOS
        node.create_subscription(Image, topic, callback(topic), qos)
    child = subprocess.Popen([sys.executable, __file__, "--role", "pub", "--size", str(height), str(width),
                              "--rate", str(rate), "--seconds", str(seconds + 2.0)], env=env)
    warmup_end = time.monotonic() + 2.0
    while time.monotonic() < warmup_end:
        rclpy.spin_once(node, timeout_sec=0.01)
    for values in latencies.values():
        values.clear()
    start = time.monotonic()
    while time.monotonic() - start < seconds:
        rclpy.spin_once(node, timeout_sec=0.01)
    elapsed = time.monotonic() - start
    child.wait(30)
    node.destroy_node()
    rclpy.shutdown()
    all_lat = np.concatenate([np.asarray(v) for v in latencies.values()]) if any(latencies.values()) else np.zeros(0)
    return {
        "rate": min(len(v) for v in latencies.values()) / elapsed,
        "p50": float(np.percentile(all_lat, 50)) if all_lat.size else float("nan"),
        "p99": float(np.percentile(all_lat, 99)) if all_lat.size else float("nan"),
        "mean": float(all_lat.mean()) if all_lat.size else float("nan"),
    }


def main() -> int:
    """Parse arguments and print the table."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--role", choices=["sub", "pub"], default="sub")
    parser.add_argument("--size", nargs=2, type=int)
    parser.add_argument("--rate", type=float, default=30.0)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--transports", nargs="+", default=["default", "LARGE_DATA"])
    parser.add_argument("--qos", nargs="+", default=["image", "sensor"], choices=["image", "sensor"],
                        help="subscriber QoS: the project's IMAGE_SUBSCRIBER_QOS (reliable) or best-effort sensor data")
    args = parser.parse_args()
    if args.role == "pub":
        publish(args.size[0], args.size[1], args.rate, args.seconds)
        return 0
    print(f"2 camera streams (shoulder + wrist), rgb8, {args.rate:g} Hz, {args.seconds:g} s each, between 2 processes")
    print(f"{'size':>10} {'transport':>11} {'sub QoS':>8} {'rate Hz':>8} {'mean ms':>8} {'p50 ms':>7} {'p99 ms':>7}")
    for height, width in SIZES:
        for transport in args.transports:
            for qos in args.qos:
                r = measure(height, width, args.rate, args.seconds, transport, qos)
                print(f"{height:>4}x{width:<5} {transport:>11} {qos:>8} {r['rate']:8.1f} {r['mean']:8.2f} "
                      f"{r['p50']:7.2f} {r['p99']:7.2f}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
