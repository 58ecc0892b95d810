"""plan_ga_planner: a lifecycle node around one ``PlannerSession``.

The node converts messages, hands them to the session, calls ``session.tick(now)`` on its planning
thread and publishes the Decision. Three threads, one lock (``_lock``) around the session:

- the executor: subscriptions, services, lifecycle, parameters, and, under ``use_sim_time`` only, the
  planning timer (ROS time), whose only work is to wake the planning thread;
- the planning thread: one tick at a time (model inference included), then the publications; on the
  system clock it paces itself (an Event wait until the next period: no executor wake-up per tick);
- the watchdog (``watchdog.py``, wall time, never blocked by a tick): a tick that overruns
  ``max_tick_time`` gets a zero command and ERROR, and its inference is cancelled; a clock that stops
  (``/clock`` under ``use_sim_time``) stops the robot; it publishes the diagnostics.
Parameters: ``params.py``; model loading and hot-swap: ``models.py``; goals and paths: ``goals.py``.
"""

from __future__ import annotations

import functools
import math
import os
import signal
import sys
import threading
import time
import traceback
from collections.abc import Callable
from pathlib import Path as FsPath
from typing import Any

import numpy as np
import onnxruntime as ort
import rclpy
from diagnostic_msgs.msg import DiagnosticArray
from geometry_msgs.msg import Twist, TwistStamped
from nav_msgs.msg import OccupancyGrid, Odometry, Path
from rclpy.callback_groups import ReentrantCallbackGroup
from rclpy.clock import JumpThreshold
from rclpy.duration import Duration
from rclpy.event_handler import PublisherEventCallbacks, SubscriptionEventCallbacks
from rclpy.exceptions import InvalidHandle
from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor
from rclpy.lifecycle import LifecycleNode, LifecycleState, TransitionCallbackReturn
from rclpy.parameter import Parameter
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
from rclpy.signals import SignalHandlerOptions
from std_msgs.msg import Float32MultiArray, Header, String

from .. import tensors
from ..parameters import QOS_DEFAULTS
from ..planner import PlannerConfig
from ..policy import OnnxPolicy, PolicyError
from ..session import Decision, Level, PlannerSession, StopReason
from . import conversions as conv
from .diagnostics import MAX_MESSAGE_CHARS, MIN_TICKS, Stats, bounded, status_record, worst
from .goals import GoalInputs
from .models import ModelSlot
from .params import NodeParameters, WholeRequestParameterService, qos_profile
from .watchdog import Tick, Watchdog

NODE_NAME = "plan_ga_planner"
LOG_REPEAT = 5.0  # s: a state is logged when it changes, and the same state at most this often
MISSED_PERIOD_WARN_SHARE = 0.05  # diagnostics WARN when more of the stats window's ticks ran past the period


def default_model_path() -> str:
    """models/planner.onnx in the installed share directory, else next to the source tree."""
    try:
        from ament_index_python.packages import get_package_share_directory

        path = os.path.join(get_package_share_directory("plan_ga_ros"), "models", "planner.onnx")
        if os.path.isfile(path):
            return path
    except Exception:  # not installed through ament (pip/editable install)
        pass
    return str(FsPath(__file__).resolve().parents[2] / "models" / "planner.onnx")


class PolledGroup(ReentrantCallbackGroup):
    """A callback group the executor leaves out of its wait set while ``polled``: its subscription is
    then taken by the planning thread before each tick (no executor wake-up per message)."""

    def __init__(self, polled: Callable[[], bool]) -> None:
        super().__init__()
        self.polled = polled

    def can_execute(self, entity: Any) -> bool:
        return not self.polled()


def guarded(callback: Callable[..., None]) -> Callable[..., None]:
    """Run a callback so that an unexpected exception stops the robot instead of the node."""

    @functools.wraps(callback)
    def wrapper(self: PlannerNode, *args: Any) -> None:
        try:
            callback(self, *args)
        except Exception as exc:  # the node must outlive any bug in one callback
            self.get_logger().error(f"internal error in {callback.__name__}: {exc!r}\n{traceback.format_exc()}")
            self._stop_robot(StopReason.INTERNAL_ERROR, f"{callback.__name__}: {exc!r}")

    return wrapper


class PlannerNode(LifecycleNode):
    """Costmap + odometry + goal/path → PlannerSession → validated trajectory and cmd_vel."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("start_parameter_services", False)  # ours check a request as one whole
        super().__init__(NODE_NAME, **kwargs)
        self._parameter_service = WholeRequestParameterService(self)
        self._lock = threading.RLock()  # the session is not thread-safe: every thread takes this
        self._cmd_lock = threading.Lock()  # orders /cmd_vel publications (planning, watchdog, lifecycle)
        self._status_lock = threading.Lock()
        self._session: PlannerSession | None = None
        self._goals: Any = None
        self._subs: list = []
        self._odom_sub: Any = None
        self._odom_group = PolledGroup(self._odometry_polled)
        self._take_lock = threading.Lock()  # one thread at a time takes polled odometry
        self._pubs: dict[str, Any] = {}
        self._timer = None
        self._active = self._stopping = False
        self._configure_error = self._publish_error = ""
        self._decision: Decision | None = None
        self._reported: tuple = ()
        self._logged_at: dict[str, float] = {}
        self._overrun = ("", -math.inf)  # (message, wall time) of the last overrun
        self._missed = (0, -math.inf)  # ticks past the planning period since the last log line, its wall time
        self._next_due = self._last_odom_tick = -math.inf  # plan_on_odometry, ROS time
        self._goal_diag: dict[str, str] = {}
        self._goal_diag_at = -math.inf
        self._path_buffer = conv.PathBuffer()
        self._tick_event = threading.Event()
        self._repace = False  # the planning thread restarts its own pacing (activation)
        self._params = NodeParameters(self, lambda: self._session is not None, self._prepare_change,
                                      self._apply_change)
        self._model = ModelSlot(self._params, default_model_path, self.get_logger(), self._swap_model)
        self._stats = Stats(int(self._v("stats_window")))
        self._diag_pub = self.create_publisher(DiagnosticArray, "/diagnostics", 10)
        self._jump = self.get_clock().create_jump_callback(
            JumpThreshold(min_forward=None, min_backward=Duration(nanoseconds=-1_000_000), on_clock_change=False),
            post_callback=self._on_clock_jump)
        self._planning = threading.Thread(target=self._plan_loop, name="planning", daemon=True)
        self._planning.start()
        self._watchdog = Watchdog(self._v, self._now, self._overran, self._clock_stopped, self._clock_runs,
                                  self._publish_diagnostics)
        self._watchdog.start()
        if self._v("autostart") and self.trigger_configure() == TransitionCallbackReturn.SUCCESS:
            self.trigger_activate()

    # ------------------------------------------------------------------ small helpers
    def _v(self, name: str) -> Any:
        return self._params.values[name]

    def _now(self) -> float:
        return self.get_clock().now().nanoseconds * 1e-9

    @property
    def lifecycle_state(self) -> str:
        """Label of the current lifecycle state (unconfigured, inactive, active, finalized)."""
        return self._state_machine.current_state[1]

    def set_parameters(self, parameter_list: list[Parameter]) -> list:
        """As rclpy's, but the list is checked and applied as one candidate configuration."""
        result = self.set_parameters_atomically(parameter_list)
        return [result for _ in parameter_list]

    def set_parameters_atomically(self, parameter_list: list[Parameter]) -> Any:
        with self._params.lock:
            return super().set_parameters_atomically(parameter_list)

    # ------------------------------------------------------------------ parameters and the model
    def _prepare_change(self, changes: dict[str, Any], candidate: dict[str, Any]) -> str | None:
        """Check a valid candidate against the running node: the planning config it makes and the
        model it names (loaded off this thread; its verdict if it comes quickly)."""
        try:
            PlannerConfig.from_params(candidate, self._session.spec)
        except (ValueError, TypeError) as exc:
            return str(exc)
        return self._model.request(candidate)

    def _apply_change(self, changes: dict[str, Any]) -> None:
        """Swap an accepted change in (parameter lock held)."""
        if self._session is not None:
            policy = self._model.take_pending(self._params.values)
            with self._lock:
                if policy is not None:
                    self._swap_model(policy)
                else:
                    config = PlannerConfig.from_params(self._params.values, self._session.spec)
                    if config != self._session.config:  # (set_config restarts the progress checker)
                        self._session.set_config(config)
        if "planning_frequency" in changes and self._timer is not None:
            self._timer.timer_period_ns = int(1e9 / self._v("planning_frequency"))
        if {"diagnostics_period", "max_tick_time", "clock_timeout"} & changes.keys():
            self._watchdog.report_now()

    def _swap_model(self, policy: OnnxPolicy) -> None:
        """Put a validated model into the session with the config it implies."""
        with self._lock:
            values = self._params.values
            self._session.set_model(functools.partial(self._infer, policy), policy.spec)
            self._session.set_config(PlannerConfig.from_params(values, policy.spec))
            self._model.set_running(policy, values)
        self.get_logger().info(f"model in use: {policy.path} ({policy.providers[0]})")

    def _infer(self, policy: OnnxPolicy, feed: dict[str, np.ndarray]) -> np.ndarray:
        """The session's network: the policy, cancellable by the watchdog for this tick."""
        options = ort.RunOptions()
        options.log_severity_level = 4
        tick = self._watchdog.tick
        if tick is not None:
            tick.run_options = options
            if tick.fired:
                options.terminate = True
        return policy.run(feed, options)

    # ------------------------------------------------------------------ lifecycle
    def on_configure(self, state: LifecycleState) -> TransitionCallbackReturn:
        values = self._params.values
        try:
            problems = self._params.configure_problems()
            if problems:
                raise PolicyError("; ".join(problems))
            policy = self._model.load(values)
            config = PlannerConfig.from_params(values, policy.spec)
        except (PolicyError, ValueError) as exc:
            self._configure_error = bounded(str(exc), 2000)
            self.get_logger().error(f"configure failed: {self._configure_error}")
            self._watchdog.report_now()
            return TransitionCallbackReturn.FAILURE
        with self._lock:
            self._session, self._configure_error, self._decision = PlannerSession(config, policy.spec), "", None
            self._swap_model(policy)
            self._stats = Stats(int(values["stats_window"]))
        qos = {role: qos_profile(values, role) for role in QOS_DEFAULTS}
        self._subs = [
            self.create_subscription(OccupancyGrid, "/local_costmap/costmap", self._on_costmap, qos["costmap"],
                                     event_callbacks=self._sub_events("/local_costmap/costmap")),
            self.create_subscription(Odometry, "/odom", self._on_odom, qos["odom"], callback_group=self._odom_group,
                                     event_callbacks=self._sub_events("/odom")),
        ]
        self._odom_sub = self._subs[1]
        self._goals = GoalInputs(self, self._session, self._lock, qos["goal"], qos["path"])
        latched = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE,
                             durability=DurabilityPolicy.TRANSIENT_LOCAL)
        cmd_type = TwistStamped if values["use_twist_stamped"] else Twist  # static: fixed while configured
        self._pubs = {
            "trajectory": self.create_publisher(Float32MultiArray, "~/trajectory", qos["trajectory"],
                                                event_callbacks=self._pub_events("~/trajectory")),
            "local_plan": self.create_publisher(Path, "~/local_plan", qos["local_plan"],
                                                event_callbacks=self._pub_events("~/local_plan")),
            "cmd_vel": self.create_publisher(cmd_type, "/cmd_vel", qos["cmd_vel"],
                                             event_callbacks=self._pub_events("/cmd_vel")),
            "status": self.create_publisher(String, "~/status", latched),
        }
        self.get_logger().info(
            f"configured: model {policy.path} on {policy.providers[0]}, warm-up {policy.warmup_ms:.2f} ms/run, "
            f"{policy.spec.window_cells}x{policy.spec.window_cells} window at {policy.spec.resolution} m, "
            f"planner {values['planner']}")
        return TransitionCallbackReturn.SUCCESS

    def on_activate(self, state: LifecycleState) -> TransitionCallbackReturn:
        with self._lock:
            self._session.clear_goal()  # a goal received while inactive never moves the robot
        self._next_due = self._last_odom_tick = -math.inf
        if self.get_clock().ros_time_is_active:  # sim time: a ROS timer; else the planning thread paces
            self._timer = self.create_timer(1.0 / self._v("planning_frequency"), self._on_timer)
        self._repace = self._active = True
        self._tick_event.set()
        self._record(Decision(self._now(), StopReason.NO_GOAL))
        return super().on_activate(state)

    def on_deactivate(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._deactivate()
        return super().on_deactivate(state)

    def on_cleanup(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._release()
        return TransitionCallbackReturn.SUCCESS

    def on_shutdown(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._deactivate()
        self._release()
        return TransitionCallbackReturn.SUCCESS

    on_error = on_shutdown

    def _deactivate(self) -> None:
        self._stop_robot(StopReason.INACTIVE, "", deactivate=True)
        if self._timer is not None:
            self.destroy_timer(self._timer)
            self._timer = None
        if self._session is not None:
            with self._lock:
                self._session.clear_goal()  # the next activation waits for a new goal

    def _release(self) -> None:
        if self._goals is not None:
            self._goals.destroy()
        with self._take_lock:
            self._odom_sub = None
        for sub in self._subs:
            self.destroy_subscription(sub)
        with self._cmd_lock:
            pubs, self._pubs = self._pubs, {}
        for pub in pubs.values():
            self.destroy_publisher(pub)
        with self._lock:
            self._session = self._goals = self._decision = None
            self._subs = []
            self._model.set_running(None, {})

    def stop_safely(self) -> None:
        """Before the process exits: no more plans, a zero command, and wait until it is acknowledged."""
        self._stop_robot(StopReason.SHUTDOWN, "", deactivate=True)
        pub = self._pubs.get("cmd_vel")
        if pub is not None:
            conv.wait_acknowledged(pub, "the zero command", self.get_logger())

    def destroy_node(self) -> None:
        self._stopping, self._active = True, False
        self._tick_event.set()
        self._watchdog.stop(timeout=1.0)
        self._planning.join(timeout=2.0 * self._v("max_tick_time") + 1.0)
        if self._session is not None:
            self._release()
        self._jump.unregister()
        super().destroy_node()

    # ------------------------------------------------------------------ inputs
    def _sub_events(self, topic: str) -> SubscriptionEventCallbacks:
        def incompatible(event: Any) -> None:
            self.get_logger().error(
                f"incompatible QoS on subscription {topic}: a publisher offers an incompatible "
                f"{getattr(event.last_policy_kind, 'name', event.last_policy_kind)} policy (total "
                f"{event.total_count}); set qos.* parameters to match the publisher")
        return SubscriptionEventCallbacks(incompatible_qos=incompatible)

    def _pub_events(self, topic: str) -> PublisherEventCallbacks:
        def incompatible(event: Any) -> None:
            self.get_logger().error(
                f"incompatible QoS on publisher {topic}: a subscriber requests an incompatible "
                f"{getattr(event.last_policy_kind, 'name', event.last_policy_kind)} policy (total {event.total_count})")
        return PublisherEventCallbacks(incompatible_qos=incompatible)

    @guarded
    def _on_costmap(self, msg: OccupancyGrid) -> None:
        session = self._session
        if session is None:
            return
        try:
            grid = conv.grid_from_msg(msg, int(self._v("max_grid_cells")))
            grid = tensors.pool_grid(grid, session.spec.resolution)  # fine grids: pooled once, outside the lock
        except ValueError as exc:
            with self._lock:
                session.reject("costmap", str(exc))
            return
        with self._lock:
            session.set_costmap(grid, conv.stamp_to_sec(msg.header.stamp))

    @guarded
    def _on_odom(self, msg: Odometry) -> None:
        session = self._session
        if session is None:
            return
        try:
            pose, velocity = conv.odometry_from_msg(msg)
        except ValueError as exc:
            with self._lock:
                session.reject("odometry", str(exc))
            return
        with self._lock:
            session.set_odometry(pose, velocity, conv.stamp_to_sec(msg.header.stamp), msg.header.frame_id)
        if self._active and self._v("plan_on_odometry") and self._odometry_due(self._now()):
            self._tick_event.set()

    def _odometry_polled(self) -> bool:
        """Odometry is taken by the planning thread before each tick, not by the executor on arrival,
        unless it drives the ticks (plan_on_odometry) or the clock is simulated (a reset must not see
        queued messages of the old time line) or the node is inactive (diagnostics show its age)."""
        return self._active and not self._v("plan_on_odometry") and not self.get_clock().ros_time_is_active

    def _take_odometry(self, keep: bool = True) -> None:
        """Take every queued odometry message, in order, through ``_on_odom`` (``keep=False``: drop them)."""
        with self._take_lock:
            sub = self._odom_sub
            if sub is None:
                return
            try:
                with sub.handle:
                    while True:
                        taken = sub.handle.take_message(sub.msg_type, sub.raw)
                        if taken is None:
                            return
                        if keep:
                            self._on_odom(taken[0])
            except InvalidHandle:  # destroyed meanwhile
                return

    def _odometry_due(self, now: float) -> bool:
        """plan_on_odometry: the first odometry after each period plans (phase-locked to
        planning_frequency; a gap or a clock that jumped back resynchronises)."""
        period = 1.0 / self._v("planning_frequency")
        if self._next_due - 2.0 * period <= now < self._next_due:
            return False
        late = now - self._next_due
        self._next_due = self._next_due + period if 0.0 <= late < period else now + period
        self._last_odom_tick = now
        return True

    def _on_timer(self) -> None:
        if not self.get_clock().ros_time_is_active:
            return  # use_sim_time was turned off: the planning thread paces itself
        if self._timer_due():
            self._tick_event.set()

    def _timer_due(self) -> bool:
        since = self._now() - self._last_odom_tick
        # plan_on_odometry: odometry drives the ticks; the timer only covers missing odometry
        return not (self._v("plan_on_odometry") and 0.0 <= since < 1.5 / self._v("planning_frequency"))

    def _on_clock_jump(self, jump: Any) -> None:
        """The clock jumped back (a simulation reset, a bag loop): what the session holds belongs to
        another time line. Forget it and stop; plan again from the next inputs and goal."""
        self._next_due = self._last_odom_tick = -math.inf
        if self._odometry_polled():
            self._take_odometry(keep=False)  # queued before the jump: the old time line
        if self._session is not None:
            with self._lock:
                self._session.reset()
                self._stats.tick_times.clear()
            if self._active:  # the session no longer knows the robot was moving: stop it here
                self._stop_robot(StopReason.CLOCK_JUMPED, f"by {-jump.delta.nanoseconds * 1e-9:.3f} s")

    # ------------------------------------------------------------------ the planning thread
    def _plan_loop(self) -> None:
        """Tick when woken (ROS timer under sim time, odometry, a stop) or, on the system clock, every
        period by itself: one Event wait per tick, no executor wake-up, no polling."""
        due = math.inf  # monotonic time of the next self-paced tick
        while True:
            timeout = None
            if self._active and not self._stopping:
                if self.get_clock().ros_time_is_active:
                    due, self._repace = math.inf, False  # the ROS timer paces: nothing to re-pace
                    if self._timer is None:  # use_sim_time turned on while active
                        self._timer = self.create_timer(1.0 / self._v("planning_frequency"), self._on_timer)
                else:
                    wall = time.monotonic()
                    if self._repace or due == math.inf:
                        self._repace, due = False, wall + 1.0 / self._v("planning_frequency")
                    timeout = max(0.0, due - wall)
            woken = self._tick_event.wait(timeout)
            self._tick_event.clear()
            if self._stopping:
                return
            if not woken:  # the self-paced period is due
                period, wall = 1.0 / self._v("planning_frequency"), time.monotonic()
                due = due + period if 0.0 <= wall - due < period else wall + period
                if not self._timer_due():
                    continue
            elif self._repace:
                continue
            if self._active and not self._watchdog.clock_stopped:
                try:
                    self._tick()
                except Exception as exc:  # a bug must stop the robot, not the planning thread
                    self.get_logger().error(f"internal error in the tick: {exc!r}\n{traceback.format_exc()}")
                    self._stop_robot(StopReason.INTERNAL_ERROR, repr(exc))

    def _tick(self) -> None:
        session, goals = self._session, self._goals
        if session is None:
            return
        if self._odometry_polled():
            self._take_odometry()
        now = self._now()
        goals.before_tick(now, self._v("transform_tolerance"))
        tick = self._watchdog.watch()
        with self._lock:
            decision = session.tick(now)
            frame = session.odometry_frame
        t0 = time.perf_counter()
        with self._cmd_lock:
            tick.done = True
            if not tick.fired and decision.send and self._active:
                self._publish_cmd(decision.command, now)
        if tick.fired:  # the watchdog stopped the robot meanwhile: this late result is discarded
            with self._lock:
                late = decision.timings_ms
                decision = session.stop_decision(now, StopReason.DEADLINE, self._overrun[0])
                decision.timings_ms.update(late)  # its time still counts (p95, ticks past the period)
        elif decision.executing and self._active:  # built only for listeners: a Path costs ~1 ms to publish
            if self._pubs["trajectory"].get_subscription_count():
                self._pubs["trajectory"].publish(conv.trajectory_msg(decision.controls.astype(np.float32)))
            if self._pubs["local_plan"].get_subscription_count():
                self._pubs["local_plan"].publish(self._path_buffer.fill(decision.path, frame, now, session.spec.dt))
        if self._active:
            goals.after_tick(decision, frame, now)
        decision.timings_ms["publish"] = (time.perf_counter() - t0) * 1e3
        decision.timings_ms["total"] = decision.timings_ms.get("total", 0.0) + decision.timings_ms["publish"]
        period_ms = 1e3 / self._v("planning_frequency")
        with self._lock:
            self._stats.add(decision, now, period_ms)
        if decision.timings_ms["total"] > period_ms:
            self._log_missed_period(decision, period_ms)
        if time.monotonic() - self._goal_diag_at > 0.5 * self._v("diagnostics_period"):
            self._goal_diag = goals.diagnostics()  # here: it takes the session lock, the watchdog must not
            self._goal_diag_at = time.monotonic()
        self._record(decision)

    def _log_missed_period(self, decision: Decision, period_ms: float) -> None:
        """A tick ran past the planning period (as Nav2's "Control loop missed its desired rate"): a
        warning at most once per diagnostics period, with how many did since the last one."""
        missed, logged_at = self._missed
        wall = time.monotonic()
        if wall - logged_at < self._v("diagnostics_period"):
            self._missed = (missed + 1, logged_at)
            return
        self._missed = (0, wall)
        since = f"; {missed + 1} ticks past it since the last message" if missed else ""
        self.get_logger().warning(
            f"planning missed its desired rate: a tick took {decision.timings_ms['total']:.1f} ms, past the "
            f"planning period ({period_ms:.1f} ms at {1e3 / period_ms:g} Hz), planner {decision.planner or 'none'}"
            f"{since}")

    def _publish_cmd(self, command: np.ndarray, stamp: float) -> None:
        """Publish a command (``_cmd_lock`` held). A failure is reported, never raised."""
        pub = self._pubs.get("cmd_vel")
        if pub is None:
            return
        try:
            if self._v("use_twist_stamped"):
                pub.publish(conv.twist_stamped_msg(command, self._v("base_frame"), stamp))
            else:
                pub.publish(conv.twist_msg(command))
            self._publish_error = ""
        except Exception as exc:
            if not self._publish_error:
                self.get_logger().error(f"/cmd_vel publish failed: {exc!r}")
            self._publish_error = bounded(f"/cmd_vel publish failed: {exc!r}")

    def _stop_robot(self, reason: StopReason, detail: str, deactivate: bool = False) -> None:
        """Publish a zero command now (from any thread) and record why; ``deactivate``: no more plans."""
        now = self._now()
        with self._cmd_lock:
            if deactivate:
                self._active = False
            self._publish_cmd(np.zeros(3), now)
        session = self._session
        if session is not None and self._lock.acquire(timeout=0.1):  # never wait on a stuck tick
            try:
                self._record(session.stop_decision(now, reason, detail))
            finally:
                self._lock.release()

    def _record(self, decision: Decision) -> None:
        """Keep the decision for diagnostics; on a change of state publish ``~/status`` and log it once
        (the same state at most every LOG_REPEAT s)."""
        with self._status_lock:
            self._decision = decision
            key = (decision.reason, decision.planner if decision.executing else "")
            if key == self._reported:
                return
            self._reported = key
            pub = self._pubs.get("status")
            if pub is not None:
                pub.publish(String(data=status_record(decision)))
            wall, name = time.monotonic(), "/".join(str(k) for k in key)
            if wall - self._logged_at.get(name, -math.inf) < LOG_REPEAT:
                return
            self._logged_at[name] = wall
        text = bounded(decision.message, MAX_MESSAGE_CHARS)
        if decision.executing:
            self.get_logger().info(f"planning ({decision.planner})")
        elif decision.reason.level is Level.ERROR:
            self.get_logger().error(f"not planning: {text}")
        elif decision.reason.level is Level.WARN:
            self.get_logger().warning(f"not planning: {text}")
        else:
            self.get_logger().info(f"not planning: {text}")

    # ------------------------------------------------------------------ watchdog callbacks (its thread)
    def _overran(self, tick: Tick) -> None:
        """A tick runs past max_tick_time: zero command now, cancel its inference."""
        with self._cmd_lock:
            if tick.done:
                return
            tick.fired = True
            if tick.run_options is not None:
                tick.run_options.terminate = True
            if self._active:
                self._publish_cmd(np.zeros(3), self._now())
        self._overrun = (f"a tick ran longer than max_tick_time={self._v('max_tick_time'):g} s: zero command "
                         "sent, its inference cancelled", time.monotonic())

    def _clock_stopped(self, why: str) -> None:
        if self._active and self._session is not None:
            self._stop_robot(StopReason.CLOCK_STOPPED, why)
        else:
            self.get_logger().error(f"clock stopped: {why}")

    def _clock_runs(self) -> None:
        self.get_logger().info("the clock runs again")

    def _publish_diagnostics(self) -> None:
        level, message, values = self._diagnostic_values()
        status = conv.diagnostic_status(f"{self.get_name()}: planner", self.get_fully_qualified_name(), level,
                                        bounded(message, MAX_MESSAGE_CHARS), {k: bounded(v) for k, v in values.items()})
        self._diag_pub.publish(DiagnosticArray(header=Header(stamp=self.get_clock().now().to_msg()), status=[status]))

    def _diagnostic_values(self) -> tuple[int, str, dict[str, Any]]:
        wall, now, wd = time.monotonic(), self._now(), self._watchdog
        session, policy, d = self._session, self._model.policy, self._decision
        values: dict[str, Any] = {
            "lifecycle_state": self.lifecycle_state, "planner": self._v("planner"),
            "model_path": policy.path if policy else (self._v("model_path") or default_model_path()),
            "provider": policy.providers[0] if policy else "",
            "model_has_metadata": policy.has_metadata if policy else "",
            "load_error": self._model.error or self._configure_error,
            "planning_frequency_hz": f"{self._v('planning_frequency'):.1f}", "tick_overruns": wd.overruns}
        if session is None:
            if self._configure_error:
                return Level.ERROR, f"configure failed: {self._configure_error}", values
            return Level.OK, "unconfigured", values
        p95, over, stall, tight = 0.0, (0, 0), None, False
        period_ms = 1e3 / self._v("planning_frequency")
        if self._lock.acquire(timeout=0.05):  # a stuck tick holds it: report without these
            try:
                ages = session.input_ages(now)
                goal = session.goal_pose
                values.update({
                    "ticks": session.ticks, "plans_rejected": session.rejected,
                    "fallback_ticks": session.fallback_ticks, "recovery_ticks": session.recovery_ticks,
                    "stalls": session.stalls, "fallback_takeovers": session.takeovers,
                    "last_takeover": bounded(session.last_takeover[1]) if session.last_takeover else "none",
                    "fallback_share": f"{session.fallback_ticks / max(session.ticks, 1):.3f}",
                    "achieved_rate_hz": f"{self._stats.rate():.2f}",
                    "costmap_age_s": "none" if ages["costmap"] is None else f"{ages['costmap']:.3f}",
                    "odom_age_s": "none" if ages["odometry"] is None else f"{ages['odometry']:.3f}",
                    "goal": "none" if goal is None else "({:.2f}, {:.2f}, {:.2f})".format(*goal),
                    **self._stats.percentiles()})
                p95 = self._stats.total_p95()
                over = (self._stats.over_period(), len(self._stats.late))
                values["ticks_over_period"] = f"{over[0]} of {over[1]}"
                stall = session.last_stall
                tight = session.tight
            finally:
                self._lock.release()
        else:
            values["planner_busy"] = "a tick holds the session"
        if not self._active and self._goals is not None:
            self._goal_diag = self._goals.diagnostics()  # no tick can hold the lock while inactive
        values.update(self._goal_diag)
        executing = self._active and d is not None and d.executing
        values["state"] = "inactive" if not self._active or d is None else (
            "planning" if executing else d.reason.name.lower())
        values["stop_reason"] = "" if executing or not self._active or d is None else d.message
        values["planner_in_use"] = d.planner if executing else "none"
        # the GA's plan in use was planned without its soft clearance margin (the fallback; ga after a stall)
        values["ga_clearance_margin"] = "off" if executing and d.planner == "ga" and tight else "on"
        if not self._active or d is None:
            level, message = Level.OK, "inactive" if not self._active else "active"
        else:
            level, message = d.reason.level, f"planning ({d.planner})" if executing else d.message
        tick = wd.tick
        stuck = tick is not None and tick.fired and not tick.done
        budget = self._v("compute_warn_fraction") * period_ms
        recent = 2.0 * self._v("diagnostics_period") + 1.0
        level, message = worst(level, message, {
            f"a tick has run for {wall - tick.start:.1f} s and is still running" if stuck else "":
                Level.ERROR if stuck else Level.OK,
            f"clock stopped: {wd.clock_stopped}": Level.ERROR if wd.clock_stopped else Level.OK,
            stall[1] if stall else "": Level.WARN if self._active and stall and 0 <= now - stall[0] < recent
            else Level.OK,
            self._overrun[0]: Level.ERROR if wall - self._overrun[1] < recent else Level.OK,
            self._publish_error: Level.ERROR if self._publish_error else Level.OK,
            self._model.error: Level.WARN if self._model.error else Level.OK,
            # before the p95: ticks that missed the period are named even when the p95 is high as well; a few
            # (one in MISSED_PERIOD_WARN_SHARE, e.g. a GA comparison on a busy CPU) are logged and counted only
            f"{over[0]} of the last {over[1]} ticks ran past the planning period ({period_ms:.1f} ms)":
                Level.WARN if self._active and over[1] >= MIN_TICKS and over[0] > MISSED_PERIOD_WARN_SHARE * over[1]
                else Level.OK,
            f"tick compute p95 {p95:.1f} ms exceeds {self._v('compute_warn_fraction'):.0%} of the period":
                Level.WARN if self._active and p95 > budget else Level.OK,
        })
        return level, message, values


def main(args: list[str] | None = None) -> None:
    """Run the node until SIGINT/SIGTERM; then stop the robot (acknowledged) and exit cleanly.

    rclpy's signal handler is not installed (it would shut the context down before the zero command
    is out). The signals are blocked in the threads started here and taken by this thread with
    ``sigtimedwait``; threads that existed before (a BLAS pool) may still catch one, so the Python
    handler only records the request: no KeyboardInterrupt, however many Ctrl-Cs arrive.
    """
    signals = {signal.SIGINT, signal.SIGTERM}
    requested = threading.Event()
    for sig in signals:
        signal.signal(sig, lambda *_: requested.set())
    signal.pthread_sigmask(signal.SIG_BLOCK, signals)  # threads started from here on inherit it
    rclpy.init(args=args, signal_handler_options=SignalHandlerOptions.NO)
    node, executor = None, SingleThreadedExecutor()

    def spin() -> None:
        try:
            executor.spin()
        except ExternalShutdownException:
            pass
        except Exception as exc:
            print(f"{NODE_NAME}: executor stopped: {exc!r}", flush=True)
        finally:
            requested.set()

    try:
        node = PlannerNode()
        executor.add_node(node)
        threading.Thread(target=spin, name="executor", daemon=True).start()
        while not requested.is_set() and signal.sigtimedwait(signals, 1.0) is None:
            pass
    finally:
        if node is not None:
            try:
                node.stop_safely()
            except Exception as exc:  # the context may be gone already
                print(f"{NODE_NAME}: could not publish the zero command: {exc!r}", flush=True)
        executor.shutdown(timeout_sec=1.0)
        if node is not None:
            node.destroy_node()
        rclpy.try_shutdown()
        rclpy.utilities.get_default_context().destroy()  # the middleware says goodbye to its peers
    # Everything is released and the zero command acknowledged: leave now. The interpreter's own exit
    # would destroy the middleware's and ONNX Runtime's static objects in an order that sometimes
    # aborts the process ("terminate called without an active exception", exit -6).
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


if __name__ == "__main__":
    main()
