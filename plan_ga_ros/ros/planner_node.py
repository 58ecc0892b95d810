"""plan_ga_planner: a lifecycle node around one ``PlannerSession``.

The node converts messages, hands them to the session, calls ``session.tick(now)`` on its planning
thread and publishes the Decision. Three threads, one lock (``_lock``) around the session:

- the executor: subscriptions, services, lifecycle, parameters, and the planning timer (ROS time),
  whose only work is to wake the planning thread;
- the planning thread: one tick at a time (model inference included), then the publications;
- the watchdog (wall time, never blocked by a tick): a tick that overruns ``max_tick_time`` gets a
  zero command and ERROR, and its ONNX Runtime run is cancelled; a clock that stops (``/clock`` under
  ``use_sim_time``) stops the robot; it also publishes the diagnostics every ``diagnostics_period``.
"""

from __future__ import annotations

import functools
import math
import os
import signal
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path as FsPath
from typing import Any

import numpy as np
import rclpy
from diagnostic_msgs.msg import DiagnosticArray
from geometry_msgs.msg import Twist, TwistStamped
from nav_msgs.msg import OccupancyGrid, Odometry, Path
from rclpy.clock import JumpThreshold
from rclpy.duration import Duration
from rclpy.event_handler import PublisherEventCallbacks, SubscriptionEventCallbacks
from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor
from rclpy.lifecycle import LifecycleNode, LifecycleState, TransitionCallbackReturn
from rclpy.parameter import Parameter
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
from rclpy.signals import SignalHandlerOptions
from std_msgs.msg import Float32MultiArray, String

from .. import tensors
from ..contract import ContractError, ModelSpec
from ..parameters import QOS_DEFAULTS
from ..planner import PlannerConfig
from ..policy import OnnxPolicy, PolicyError, SessionConfig, load_policy
from ..session import Decision, Level, PlannerSession, StopReason
from . import conversions as conv
from .diagnostics import MAX_MESSAGE_CHARS, Stats, bounded, status_record, worst
from .goals import GoalInputs
from .params import NodeParameters, WholeRequestParameterService, qos_profile

NODE_NAME = "plan_ga_planner"
FALLBACK_GEOMETRY = ("model_resolution", "model_dt", "model_goal_clip_distance", "model_kinematics")
SYNC_LOAD_WAIT = 0.2  # s: a hot-swap answers with the model's verdict if it loads this fast, else later
ACK_TIMEOUT = 1.0  # s: shutdown waits this long for subscribers to acknowledge the zero command
LOG_REPEAT = 5.0  # s: a state is logged on change, and the same state at most this often


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


@dataclass
class _Watch:
    """One tick under the watchdog's eye (wall time)."""

    start: float
    run_options: Any = None  # the tick's onnxruntime.RunOptions: terminate=True cancels its inference
    fired: bool = False  # the watchdog stopped the robot: the tick's late result is discarded
    done: bool = False


@dataclass
class _Load:
    """A hot-swap load running off the executor and planning threads."""

    values: dict[str, Any]  # the candidate configuration it loads for
    previous: dict[str, Any]  # the model parameters to restore if it fails after the request returned
    started: float
    policy: OnnxPolicy | None = None
    error: str = ""
    done: bool = False
    detached: bool = False  # the request returned before the load ended: the loader applies the verdict


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
        self._policy: OnnxPolicy | None = None
        self._model_values: dict[str, Any] = {}
        self._goals: Any = None
        self._subs: list = []
        self._pubs: dict[str, Any] = {}
        self._timer = None
        self._active = False
        self._stopping = False
        self._configure_error = self._load_error = self._publish_error = ""
        self._loading: _Load | None = None
        self._pending_policy: tuple[OnnxPolicy, dict[str, Any]] | None = None  # loaded, swapped in after the set
        self._decision: Decision | None = None
        self._reported: tuple = ()
        self._logged_at: dict[str, float] = {}
        self._watch: _Watch | None = None
        self._overrun = ("", -math.inf)  # (message, wall time) of the last overrun
        self._overruns = 0
        self._clock_seen = (-math.inf, time.monotonic())  # (ROS time, wall time it was first seen)
        self._clock_stopped = ""
        self._next_due = -math.inf  # plan_on_odometry: ROS time of the next odometry-driven tick
        self._last_odom_tick = -math.inf
        self._next_diag = 0.0
        self._goal_diag: dict[str, str] = {}
        self._stats = Stats(10)
        self._tick_event, self._watchdog_event = threading.Event(), threading.Event()
        self._params = NodeParameters(self, lambda: self._session is not None, self._prepare_change,
                                      self._apply_change)
        self._stats = Stats(int(self._v("stats_window")))
        self._diag_pub = self.create_publisher(DiagnosticArray, "/diagnostics", 10)
        self._jump = self.get_clock().create_jump_callback(
            JumpThreshold(min_forward=None, min_backward=Duration(nanoseconds=-1_000_000), on_clock_change=False),
            post_callback=self._on_clock_jump)
        self._threads = [threading.Thread(target=self._plan_loop, name="planning", daemon=True),
                         threading.Thread(target=self._watchdog_loop, name="watchdog", daemon=True)]
        for t in self._threads:
            t.start()
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

    # ------------------------------------------------------------------ models and parameters
    def _load(self, values: dict[str, Any]) -> OnnxPolicy:
        """Load, validate, warm up and probe the model ``values`` name, bounded in size and time."""
        path = values["model_path"] or default_model_path()
        try:
            fallback = ModelSpec(resolution=values["model_resolution"], dt=values["model_dt"],
                                 goal_clip_distance=values["model_goal_clip_distance"],
                                 kinematics=values["model_kinematics"])
        except ContractError as exc:
            raise PolicyError(f"model_* parameters (geometry of a model without metadata): {exc}") from exc
        cfg = SessionConfig(tuple(values["providers"]), values["intra_op_num_threads"],
                            values["graph_optimization"], values["warmup_runs"])
        policy = load_policy(path, cfg, fallback, values["model_load_timeout"], values["max_model_bytes"])
        if not policy.has_metadata:
            self.get_logger().warning(
                f"model {policy.path} has no plan_ga_ros metadata: using parameters model_resolution, model_dt, "
                "model_goal_clip_distance and model_kinematics for its geometry")
        return policy

    def _infer(self, policy: OnnxPolicy, feed: dict[str, np.ndarray]) -> np.ndarray:
        """The session's network: the policy, cancellable by the watchdog for this tick."""
        import onnxruntime as ort

        options = ort.RunOptions()
        options.log_severity_level = 4
        watch = self._watch
        if watch is not None:
            watch.run_options = options
            if watch.fired:
                options.terminate = True
        return policy.run(feed, options)

    def _needs_load(self, values: dict[str, Any]) -> bool:
        if values["model_path"] != self._model_values.get("model_path"):
            return True
        no_metadata = self._policy is not None and not self._policy.has_metadata
        return no_metadata and any(values[k] != self._model_values.get(k) for k in FALLBACK_GEOMETRY)

    def _prepare_change(self, changes: dict[str, Any], candidate: dict[str, Any]) -> str | None:
        """Check a valid candidate against the running node (configured): the planning config it
        makes, and the model it names (loaded off this thread; its verdict if it comes quickly)."""
        self._pending_policy = None
        try:
            PlannerConfig.from_params(candidate, self._session.spec)
        except (ValueError, TypeError) as exc:
            return str(exc)
        if not self._needs_load(candidate):
            return None
        if self._loading is not None:
            return (f"model {self._loading.values['model_path'] or '<default>'} is still loading "
                    f"({time.monotonic() - self._loading.started:.1f} s); try again when it is done")
        load = _Load(dict(candidate), dict(self._model_values), time.monotonic())
        self._loading = load
        mutex, finished = threading.Lock(), threading.Event()

        def work() -> None:
            try:
                load.policy = self._load(load.values)
            except PolicyError as exc:
                load.error = str(exc)
            except Exception as exc:  # whatever happens, the request gets a verdict
                load.error = f"{type(exc).__name__}: {exc}"
            with mutex:
                load.done = True
                detached = load.detached
            finished.set()
            if detached:
                with self._params.lock:
                    self._finish_load(load)

        threading.Thread(target=work, name="model-hot-swap", daemon=True).start()
        finished.wait(SYNC_LOAD_WAIT)
        with mutex:
            if not load.done:
                load.detached = True
                self.get_logger().info(f"loading model {load.values['model_path'] or '<default>'} in the background")
                return None
        self._loading = None
        if load.error:
            return self._refuse_model(load)
        self._pending_policy = (load.policy, load.values)
        return None

    def _refuse_model(self, load: _Load) -> str:
        self._load_error = bounded(f"refused model {load.values['model_path'] or '<default>'}: {load.error}", 1000)
        self.get_logger().error(self._load_error + " (the previous model keeps running)")
        return self._load_error

    def _finish_load(self, load: _Load) -> None:
        """A background load ended after its request was accepted: swap the model in, or put the
        model parameters back (called with the parameter lock held)."""
        self._loading = None
        current = {k: self._params.values[k] for k in load.values if k == "model_path" or k in FALLBACK_GEOMETRY}
        if self._session is None or any(load.values[k] != v for k, v in current.items()):
            return  # cleaned up, or superseded by a later request
        if load.error:
            self._refuse_model(load)
            revert = [Parameter(k, value=load.previous[k]) for k in current
                      if load.previous.get(k, current[k]) != current[k]]
            if revert:
                self.set_parameters_atomically(revert)
            return
        with self._lock:
            self._swap_model(load.policy)

    def _swap_model(self, policy: OnnxPolicy) -> None:
        """Put a validated model into the session with the config it implies (session lock held)."""
        values = self._params.values
        self._session.set_model(functools.partial(self._infer, policy), policy.spec)
        self._session.set_config(PlannerConfig.from_params(values, policy.spec))
        self._policy, self._load_error = policy, ""
        self._model_values = {k: values[k] for k in ("model_path", *FALLBACK_GEOMETRY)}
        self.get_logger().info(f"model in use: {policy.path} ({policy.providers[0]})")

    def _apply_change(self, changes: dict[str, Any]) -> None:
        """Swap an accepted change in (parameter lock held)."""
        pending, self._pending_policy = self._pending_policy, None
        if pending is not None and any(self._params.values[k] != v for k, v in pending[1].items()
                                       if k == "model_path" or k in FALLBACK_GEOMETRY):
            pending = None  # prepared for a request that was refused after all
        if self._session is not None:
            with self._lock:
                if pending is not None:
                    self._swap_model(pending[0])
                else:
                    self._session.set_config(PlannerConfig.from_params(self._params.values, self._session.spec))
        if "planning_frequency" in changes and self._timer is not None:
            self._timer.timer_period_ns = int(1e9 / self._v("planning_frequency"))
        if {"diagnostics_period", "max_tick_time", "clock_timeout"} & changes.keys():
            self._next_diag = 0.0
            self._watchdog_event.set()

    # ------------------------------------------------------------------ lifecycle
    def on_configure(self, state: LifecycleState) -> TransitionCallbackReturn:
        problems = self._params.configure_problems()
        values = self._params.values
        try:
            if problems:
                raise PolicyError("; ".join(problems))
            policy = self._load(values)
            config = PlannerConfig.from_params(values, policy.spec)
        except (PolicyError, ValueError) as exc:
            self._configure_error = bounded(str(exc), 2000)
            self.get_logger().error(f"configure failed: {self._configure_error}")
            self._watchdog_event.set()
            return TransitionCallbackReturn.FAILURE
        session = PlannerSession(config, policy.spec)
        with self._lock:
            self._session, self._configure_error, self._decision = session, "", None
            self._swap_model(policy)
            self._stats = Stats(int(values["stats_window"]))
        qos = {role: qos_profile(values, role) for role in QOS_DEFAULTS}
        self._subs = [
            self.create_subscription(OccupancyGrid, "/local_costmap/costmap", self._on_costmap, qos["costmap"],
                                     event_callbacks=self._sub_events("/local_costmap/costmap")),
            self.create_subscription(Odometry, "/odom", self._on_odom, qos["odom"],
                                     event_callbacks=self._sub_events("/odom")),
        ]
        self._goals = GoalInputs(self, session, self._lock, qos["goal"], qos["path"])
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
        self._path_buffer = conv.PathBuffer()
        self.get_logger().info(
            f"configured: model {policy.path} on {policy.providers[0]}, warm-up {policy.warmup_ms:.2f} ms/run, "
            f"{policy.spec.window_cells}x{policy.spec.window_cells} window at {policy.spec.resolution} m, "
            f"planner {values['planner']}")
        return TransitionCallbackReturn.SUCCESS

    def on_activate(self, state: LifecycleState) -> TransitionCallbackReturn:
        with self._lock:
            self._session.clear_goal()  # a goal received while inactive never moves the robot
        self._next_due, self._last_odom_tick = -math.inf, -math.inf
        self._timer = self.create_timer(1.0 / self._v("planning_frequency"), self._on_timer)
        self._active = True
        self._record(Decision(self._now(), StopReason.NO_GOAL))
        return super().on_activate(state)

    def on_deactivate(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._deactivate()
        return super().on_deactivate(state)

    def _deactivate(self) -> None:
        self._stop_robot(StopReason.INACTIVE, "", deactivate=True)
        if self._timer is not None:
            self.destroy_timer(self._timer)
            self._timer = None
        if self._session is not None:
            with self._lock:
                self._session.clear_goal()  # the next activation waits for a new goal

    def on_cleanup(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._release()
        return TransitionCallbackReturn.SUCCESS

    def on_shutdown(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._deactivate()
        self._release()
        return TransitionCallbackReturn.SUCCESS

    def on_error(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._deactivate()
        self._release()
        return TransitionCallbackReturn.SUCCESS

    def _release(self) -> None:
        if self._goals is not None:
            self._goals.destroy()
        for sub in self._subs:
            self.destroy_subscription(sub)
        with self._cmd_lock:
            pubs, self._pubs = self._pubs, {}
        for pub in pubs.values():
            self.destroy_publisher(pub)
        with self._lock:
            self._session = self._policy = self._goals = self._decision = None
            self._subs, self._model_values, self._loading = [], {}, None

    def stop_safely(self) -> None:
        """Before the process exits: no more plans, a zero command, and wait until it is acknowledged."""
        self._stop_robot(StopReason.SHUTDOWN, "", deactivate=True)
        pub = self._pubs.get("cmd_vel")
        if pub is not None and pub.qos_profile.reliability == ReliabilityPolicy.RELIABLE:
            if not pub.wait_for_all_acked(Duration(seconds=ACK_TIMEOUT)):
                self.get_logger().warning(f"the zero command was not acknowledged within {ACK_TIMEOUT} s")

    def destroy_node(self) -> None:
        self._stopping = True
        self._tick_event.set()
        self._watchdog_event.set()
        for t in self._threads:
            if t is not threading.current_thread():
                t.join(timeout=2.0 * self._v("max_tick_time") + 1.0)
        self._active = False
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
        if self._v("plan_on_odometry") and 0.0 <= self._now() - self._last_odom_tick < 1.5 / self._v(
                "planning_frequency"):
            return  # odometry drives the ticks; the timer only covers missing odometry
        self._tick_event.set()

    def _on_clock_jump(self, jump: Any) -> None:
        """The clock jumped back (a simulation reset, a bag loop): what the session holds is from
        another time line. Forget it; plan again from the next inputs and goal."""
        back = -jump.delta.nanoseconds * 1e-9
        self._next_due, self._last_odom_tick = -math.inf, -math.inf
        if self._session is not None:
            with self._lock:
                self._session.reset()
                self._stats.tick_times.clear()
            if self._active:  # the session no longer knows the robot moved: stop it here
                self._stop_robot(StopReason.CLOCK_JUMPED, f"by {back:.3f} s")

    # ------------------------------------------------------------------ the planning thread
    def _plan_loop(self) -> None:
        while True:
            self._tick_event.wait()
            self._tick_event.clear()
            if self._stopping:
                return
            if self._active and not self._clock_stopped:
                try:
                    self._tick()
                except Exception as exc:  # a bug must stop the robot, not the planning thread
                    self.get_logger().error(f"internal error in the tick: {exc!r}\n{traceback.format_exc()}")
                    self._stop_robot(StopReason.INTERNAL_ERROR, repr(exc))

    def _tick(self) -> None:
        session, goals = self._session, self._goals
        if session is None:
            return
        now = self._now()
        goals.before_tick(now, self._v("transform_tolerance"))
        watch = _Watch(time.monotonic())
        self._watch = watch
        with self._lock:
            decision = session.tick(now)
            frame = session.odometry_frame
        t0 = time.perf_counter()
        with self._cmd_lock:
            watch.done = True
            if not watch.fired and decision.send and self._active:
                self._publish_cmd(decision.command, now)
        if watch.fired:
            with self._lock:
                decision = session.stop_decision(now, StopReason.DEADLINE, self._overrun[0])
        elif decision.executing and self._active:
            self._pubs["trajectory"].publish(conv.trajectory_msg(decision.controls.astype(np.float32)))
            self._pubs["local_plan"].publish(self._path_buffer.fill(decision.path, frame, now, session.spec.dt))
        if self._active:
            goals.after_tick(decision, frame, now)
        decision.timings_ms["publish"] = (time.perf_counter() - t0) * 1e3
        decision.timings_ms["total"] = decision.timings_ms.get("total", 0.0) + decision.timings_ms["publish"]
        with self._lock:
            self._stats.add(decision, now)
        if time.monotonic() >= self._next_diag - 0.1:
            self._goal_diag = goals.diagnostics()  # here, not on the watchdog: it takes the session lock
        self._record(decision)

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

    # ------------------------------------------------------------------ the watchdog thread
    def _watchdog_loop(self) -> None:
        while not self._stopping:
            wall = time.monotonic()
            wake = wall + self._v("max_tick_time")  # a tick starting now is seen by its deadline
            watch = self._watch
            if watch is not None and not watch.done:
                deadline = watch.start + self._v("max_tick_time")
                if wall >= deadline:
                    self._overran(watch, wall)
                else:
                    wake = min(wake, deadline)
            self._check_clock(wall)
            if wall >= self._next_diag:
                self._next_diag = wall + self._v("diagnostics_period")
                try:
                    self._publish_diagnostics()
                except Exception as exc:  # never let a report kill the watchdog
                    self.get_logger().error(f"diagnostics failed: {exc!r}")
            self._watchdog_event.wait(max(0.0, min(wake, self._next_diag) - time.monotonic()))
            self._watchdog_event.clear()

    def _overran(self, watch: _Watch, wall: float) -> None:
        """A tick runs past max_tick_time: zero command now, cancel its inference, ERROR."""
        with self._cmd_lock:
            if watch.done or watch.fired:
                return
            watch.fired = True
            if watch.run_options is not None:
                watch.run_options.terminate = True
            if self._active:
                self._publish_cmd(np.zeros(3), self._now())
        self._overruns += 1
        self._overrun = (f"a tick ran longer than max_tick_time={self._v('max_tick_time'):g} s: zero command "
                         "sent, its inference cancelled", wall)

    def _check_clock(self, wall: float) -> None:
        """The node's clock must advance (it is /clock under use_sim_time): if it stands still for
        clock_timeout wall seconds, stop the robot until it moves again."""
        ros = self._now()
        if ros != self._clock_seen[0]:
            self._clock_seen = (ros, wall)
            if self._clock_stopped:
                self._clock_stopped = ""
                self.get_logger().info("the clock runs again: planning resumes")
            return
        still = wall - self._clock_seen[1]
        if self._clock_stopped or still <= self._v("clock_timeout") or self._session is None:
            return
        self._clock_stopped = (f"the clock has not advanced for {still:.1f} s (wall time); "
                               "is /clock published? (use_sim_time)")
        if self._active:
            self._stop_robot(StopReason.CLOCK_STOPPED, self._clock_stopped)

    def _publish_diagnostics(self) -> None:
        level, message, values = self._diagnostic_values()
        status = conv.diagnostic_status(f"{self.get_name()}: planner", self.get_fully_qualified_name(), level,
                                        bounded(message, MAX_MESSAGE_CHARS),
                                        {k: bounded(v) for k, v in values.items()})
        arr = DiagnosticArray()
        arr.header.stamp = self.get_clock().now().to_msg()
        arr.status = [status]
        self._diag_pub.publish(arr)

    def _diagnostic_values(self) -> tuple[int, str, dict[str, Any]]:
        wall, now = time.monotonic(), self._now()
        session, policy, d = self._session, self._policy, self._decision
        path = policy.path if policy else (self._v("model_path") or default_model_path())
        values: dict[str, Any] = {"lifecycle_state": self.lifecycle_state, "planner": self._v("planner"),
                                  "model_path": path,
                                  "provider": policy.providers[0] if policy else "",
                                  "model_has_metadata": policy.has_metadata if policy else "",
                                  "load_error": self._load_error or self._configure_error,
                                  "planning_frequency_hz": f"{self._v('planning_frequency'):.1f}",
                                  "tick_overruns": self._overruns}
        if session is None:
            if self._configure_error:
                return Level.ERROR, f"configure failed: {self._configure_error}", values
            return Level.OK, "unconfigured", values
        if self._lock.acquire(timeout=0.05):  # a stuck tick holds it: report without these
            try:
                ages = session.input_ages(now)
                values.update({"ticks": session.ticks, "plans_rejected": session.rejected,
                               "fallback_ticks": session.fallback_ticks,
                               "fallback_share": f"{session.fallback_ticks / max(session.ticks, 1):.3f}",
                               "recovery_ticks": session.recovery_ticks,
                               "achieved_rate_hz": f"{self._stats.rate():.2f}",
                               "costmap_age_s": "none" if ages["costmap"] is None else f"{ages['costmap']:.3f}",
                               "odom_age_s": "none" if ages["odometry"] is None else f"{ages['odometry']:.3f}",
                               "goal": "none" if session.goal_pose is None else
                               "({:.2f}, {:.2f}, {:.2f})".format(*session.goal_pose)})
                values.update(self._stats.percentiles())
                p95 = self._stats.total_p95()
            finally:
                self._lock.release()
        else:
            values["planner_busy"] = "a tick holds the session"
            p95 = 0.0
        if not self._active:
            self._goal_diag = self._goals.diagnostics() if self._goals is not None else {}
        values.update(self._goal_diag)
        executing = d is not None and d.executing and self._active
        values["state"] = "planning" if executing else ("inactive" if not self._active or d is None
                                                         else d.reason.name.lower())
        values["stop_reason"] = "" if executing or d is None or not self._active else d.message
        values["planner_in_use"] = d.planner if executing else "none"
        if not self._active:
            level, message = Level.OK, "inactive"
        elif d is None:
            level, message = Level.OK, "active"
        else:
            level, message = d.reason.level, (f"planning ({d.planner})" if executing else d.message)
        budget = self._v("compute_warn_fraction") * 1e3 / self._v("planning_frequency")
        watch = self._watch
        stuck = watch is not None and watch.fired and not watch.done
        level, message = worst(level, message, {
            f"a tick has run for {wall - watch.start:.1f} s and is still running" if stuck else "":
                Level.ERROR if stuck else Level.OK,
            f"clock stopped: {self._clock_stopped}": Level.ERROR if self._clock_stopped else Level.OK,
            self._overrun[0]: Level.ERROR if wall - self._overrun[1] < 2 * self._v("diagnostics_period") + 1.0
            else Level.OK,
            self._publish_error: Level.ERROR if self._publish_error else Level.OK,
            self._load_error: Level.WARN if self._load_error else Level.OK,
            f"tick compute p95 {p95:.1f} ms exceeds {self._v('compute_warn_fraction'):.0%} of the period":
                Level.WARN if self._active and p95 > budget else Level.OK,
        })
        return level, message, values


def main(args: list[str] | None = None) -> None:
    """Run the node until SIGINT/SIGTERM; then stop the robot (acknowledged) and exit cleanly.

    The signals are blocked in every thread and taken here with ``sigwait``: no handler can run in
    the middle of rclpy, and rclpy's own handler (which would shut the context down before the zero
    command is out) is not installed.
    """
    signals = {signal.SIGINT, signal.SIGTERM}
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
            signal.pthread_kill(threading.main_thread().ident, signal.SIGTERM)  # wake main

    try:
        node = PlannerNode()
        executor.add_node(node)
        threading.Thread(target=spin, name="executor", daemon=True).start()
        signal.sigwait(signals)
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


if __name__ == "__main__":
    main()
