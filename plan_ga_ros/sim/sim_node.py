"""sim_node: the simulator node's entry point (the node itself is ``simulator.SimNode``).

SIGINT or SIGTERM, at any moment from the first line on, stops the simulated robot and ends the
node cleanly: the handlers are installed before anything heavy (rclpy, scipy) is imported, so a
Ctrl-C during start-up ends the process quietly too.
"""

from __future__ import annotations

import signal
import sys
import threading
import time


def main(args: list[str] | None = None) -> int:
    stop = threading.Event()

    def on_signal(signum: int, _frame: object) -> None:
        if stop.is_set():  # a second signal: the user insists
            sys.exit(128 + signum)
        stop.set()

    # Our own handlers, not rclpy's: rclpy's would shut the context down before the robot is stopped.
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, on_signal)
    import rclpy
    from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor
    from rclpy.signals import SignalHandlerOptions

    from .simulator import SimNode

    if stop.is_set():
        return 0
    rclpy.init(args=args, signal_handler_options=SignalHandlerOptions.NO)
    node = None
    code = 0
    try:
        node = SimNode()
        executor = SingleThreadedExecutor()
        executor.add_node(node)
        # Keep serving the latched results for a moment after the last episode.
        while rclpy.ok() and not stop.is_set() and not (node.done and time.monotonic() - node.done_at > 1.0):
            executor.spin_once(timeout_sec=0.1)
        if stop.is_set():
            node.stop_robot()
            node.get_logger().info("signal received: robot stopped, shutting down")
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    except Exception as exc:  # bad parameters and the like: one line, not a traceback
        print(f"plan_ga_sim: error: {type(exc).__name__}: {exc}", file=sys.stderr)
        code = 1
    finally:
        if node is not None:
            node.destroy_node()
        rclpy.try_shutdown()
    return code


if __name__ == "__main__":
    sys.exit(main())
