"""A separate-process peer for interface tests: echoes commands back as progress and serves ResetEpisode."""
import rclpy
from rclpy.node import Node

from sole_r1.msg import EEDeltaCommand, EpisodeInfo, ProgressEstimate
from sole_r1.srv import ResetEpisode
from sole_r1_ros.ros import conventions as conv


class Peer(Node):
    """Turns each EEDeltaCommand into a ProgressEstimate (progress = 100 * translation.x) and an EpisodeInfo."""

    def __init__(self):
        super().__init__("interface_peer")
        self.progress = self.create_publisher(ProgressEstimate, "/test/progress", conv.RELIABLE_QOS)
        self.info = self.create_publisher(EpisodeInfo, "/test/info", conv.RELIABLE_QOS)
        self.create_subscription(EEDeltaCommand, "/test/command", self.on_command, conv.RELIABLE_QOS)
        self.create_service(ResetEpisode, "/test/reset", self.on_reset)

    def on_command(self, cmd):
        self.progress.publish(ProgressEstimate(header=cmd.header, episode_id=cmd.episode_id, task="echo",
                                               progress=100.0 * cmd.translation.x, reasoning="r" * 3, valid=True,
                                               query_index=7, rewarder="peer"))
        self.info.publish(EpisodeInfo(episode_id=cmd.episode_id, event=EpisodeInfo.EVENT_ENDED,
                                      true_success_known=True, true_success=cmd.gripper > 0,
                                      privileged_progress=float("nan")))

    def on_reset(self, request, response):
        response.success = bool(request.task_name)
        response.message = f"reset to {request.task_name} seed {request.seed}"
        response.episode_id = 41 + int(request.seed)
        response.instruction = request.instruction or "default instruction"
        return response


if __name__ == "__main__":
    raise SystemExit(conv.run_node(Peer))
