"""`sole-r1 serve`: answer reward requests from other processes (the official SOLE-R1 ZeroMQ protocol).

Clients written for the official reward server (philipmit/sole-r1-model `reward_client/`, agentlace
`ReqRepClient`) work unchanged; the rewarder behind it is any of ours (SOLE-R1 in transformers, an
OpenAI-compatible endpoint, the tiny offline model).
"""
from __future__ import annotations

import argparse
import logging
import signal
import threading

log = logging.getLogger("sole_r1.serve")

EPILOG = """examples:
  sole-r1 serve --protocol official                                   # SOLE-R1-8B on this GPU, 127.0.0.1:8001
  sole-r1 serve --rewarder config/rewarders/openai.yaml --bind 0.0.0.0  # relay to a vLLM server, all interfaces
  sole-r1 serve --rewarder tiny --port 8002                           # offline tiny model (pipeline tests)
Binding to anything but 127.0.0.1 exposes the server to the network: it reads requests with a restricted
unpickler, but run it on trusted networks only."""


def register(subparsers: "argparse._SubParsersAction") -> argparse.ArgumentParser:
    """Add the `serve` subcommand."""
    from sole_r1_model.serve_official import DEFAULT_PORT, DEFAULT_SERVICE

    p = subparsers.add_parser("serve", help="serve rewards over the official SOLE-R1 ZeroMQ protocol",
                              description=__doc__.splitlines()[0], epilog=EPILOG,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--protocol", choices=["official"], default="official",
                   help="wire protocol (official: ZeroMQ REQ/REP, lz4 pickles, as philipmit/sole-r1-model)")
    p.add_argument("--rewarder", default="sole_r1", metavar="SPEC",
                   help="backend name (sole_r1, openai, oracle), config/rewarders name or YAML path "
                        "(default: sole_r1)")
    p.add_argument("--bind", default="127.0.0.1", help="address to listen on (default 127.0.0.1: this host only)")
    p.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"TCP port (default {DEFAULT_PORT})")
    p.add_argument("--service-name", default=DEFAULT_SERVICE,
                   help=f"interface name clients call (default {DEFAULT_SERVICE!r}, as the official server)")
    p.set_defaults(func=run)
    return p


def run(args: argparse.Namespace) -> int:
    """Load the rewarder and serve until Ctrl-C / SIGTERM; exit code 2 when the rewarder cannot be built."""
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    from sole_r1_model.rewarders import make_rewarder
    from sole_r1_model.serve_official import OfficialRewardServer, OfficialRewardService

    if not 0 <= args.port <= 65535:
        log.error("--port must be in 0..65535, got %d", args.port)
        return 2
    try:
        rewarder = make_rewarder(args.rewarder)
    except (ValueError, FileNotFoundError, ImportError, OSError) as exc:
        log.error("cannot build rewarder %r: %s", args.rewarder, exc)
        return 2
    with rewarder:
        try:
            server = OfficialRewardServer(OfficialRewardService(rewarder, args.service_name), args.bind, args.port)
        except Exception as exc:  # noqa: BLE001 -- zmq.ZMQError: address in use, bad interface
            log.error("cannot listen on %s:%d: %s", args.bind, args.port, exc)
            return 2
        if threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGTERM, lambda *_: server.stop())
        log.info("serving %s rewards on %s (Ctrl-C to stop)", rewarder.name, server.address)
        try:
            server.serve_forever()
        except KeyboardInterrupt:
            server.stop()
        log.info("stopped after %d requests", server.requests)
    return 0
