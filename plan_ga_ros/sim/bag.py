"""rosbag2 (MCAP storage) recording and reading in pure Python with ``rosbags``.

What a rosbag2 stores is each message's CDR bytes, its topic's type, type hash and offered QoS
profiles, and a receive timestamp (ns): exactly what rclpy hands a ``raw=True`` subscription and
what ``rclpy.serialization`` reads and writes, so nothing is re-encoded on the way. Used by the
demo's recorder and by ``plan_ga_replay``; the planner node never imports it.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

BAG_VERSION = 8  # rosbag2 metadata version 8: read by ros2 bag on Jazzy and later
RMW_DURATION_INFINITE_NS = 2**63 - 1

# Message types the recorder and the replay know, by rosbag2 type name.
TYPES: dict[str, tuple[str, str]] = {
    "nav_msgs/msg/OccupancyGrid": ("nav_msgs.msg", "OccupancyGrid"),
    "nav_msgs/msg/Odometry": ("nav_msgs.msg", "Odometry"),
    "nav_msgs/msg/Path": ("nav_msgs.msg", "Path"),
    "geometry_msgs/msg/PoseStamped": ("geometry_msgs.msg", "PoseStamped"),
    "geometry_msgs/msg/Twist": ("geometry_msgs.msg", "Twist"),
    "geometry_msgs/msg/TwistStamped": ("geometry_msgs.msg", "TwistStamped"),
    "std_msgs/msg/Float32MultiArray": ("std_msgs.msg", "Float32MultiArray"),
    "std_msgs/msg/String": ("std_msgs.msg", "String"),
    "diagnostic_msgs/msg/DiagnosticArray": ("diagnostic_msgs.msg", "DiagnosticArray"),
}


class BagError(Exception):
    """A bag cannot be read or written as asked; the message says why (one line)."""


def message_class(msgtype: str) -> type:
    """The rclpy message class of a rosbag2 type name (e.g. ``nav_msgs/msg/Odometry``)."""
    import importlib

    if msgtype not in TYPES:
        raise BagError(f"unknown message type {msgtype!r}")
    module, name = TYPES[msgtype]
    return getattr(importlib.import_module(module), name)


def type_name(cls: type) -> str:
    """The rosbag2 type name of an rclpy message class."""
    module = cls.__module__.split(".")  # e.g. nav_msgs.msg._odometry
    return f"{module[0]}/msg/{cls.__name__}"


def _typestore():
    from rosbags.typesys import Stores, get_typestore

    return get_typestore(Stores.ROS2_KILTED)  # same message definitions and hashes as Jazzy for these types


def _time(ns: int):
    from rosbags.interfaces import QosTime

    ns = int(ns)
    if ns >= RMW_DURATION_INFINITE_NS:  # rmw's RMW_DURATION_INFINITE, as ros2 bag record writes it
        ns = RMW_DURATION_INFINITE_NS
    return QosTime(ns // 1_000_000_000, ns % 1_000_000_000)


def qos_from_rclpy(profile: Any):
    """A rosbags ``Qos`` for an rclpy ``QoSProfile`` (e.g. a publisher's, from discovery)."""
    from rosbags.interfaces import Qos, QosDurability, QosHistory, QosLiveliness, QosReliability

    return Qos(QosHistory(int(profile.history)), int(profile.depth), QosReliability(int(profile.reliability)),
               QosDurability(int(profile.durability)), _time(profile.deadline.nanoseconds),
               _time(profile.lifespan.nanoseconds), QosLiveliness(int(profile.liveliness)),
               _time(profile.liveliness_lease_duration.nanoseconds), bool(profile.avoid_ros_namespace_conventions))


def qos(reliable: bool = True, transient_local: bool = False, depth: int = 1):
    """A plain offered QoS profile (keep last ``depth``, default deadline/lifespan/liveliness)."""
    from rosbags.interfaces import Qos, QosDurability, QosHistory, QosLiveliness, QosReliability

    inf = _time(RMW_DURATION_INFINITE_NS)
    return Qos(QosHistory.KEEP_LAST, depth, QosReliability.RELIABLE if reliable else QosReliability.BEST_EFFORT,
               QosDurability.TRANSIENT_LOCAL if transient_local else QosDurability.VOLATILE, inf, inf,
               QosLiveliness.AUTOMATIC, inf, False)


class BagWriter:
    """A rosbag2 directory (MCAP storage) written message by message; topics are added on first use."""

    def __init__(self, path: str | Path) -> None:
        from rosbags.rosbag2 import StoragePlugin, Writer, WriterError

        self.path = Path(path)
        try:
            self._writer = Writer(self.path, version=BAG_VERSION, storage_plugin=StoragePlugin.MCAP)
            self._writer.open()
        except (WriterError, OSError) as exc:
            raise BagError(f"cannot write bag {self.path}: {exc}") from exc
        self._store = _typestore()
        self._connections: dict[str, Any] = {}
        self.counts: dict[str, int] = {}

    def has(self, topic: str) -> bool:
        return topic in self._connections

    def add(self, topic: str, msgtype: str, offered_qos: Sequence[Any] = (), msgdef: str | None = None,
            digest: str | None = None) -> None:
        """Declare ``topic`` with its type and the QoS its publishers offered (ros2 bag play adapts to them)."""
        if topic in self._connections:
            return
        if msgdef and digest:  # copied from another bag: keep its definition and hash
            kwargs: dict[str, Any] = {"msgdef": msgdef, "rihs01": digest}
        elif msgtype in self._store.fielddefs:
            kwargs = {"typestore": self._store}
        else:
            raise BagError(f"cannot record {topic}: type {msgtype!r} is not in the ROS 2 type store")
        self._connections[topic] = self._writer.add_connection(topic, msgtype, offered_qos_profiles=list(offered_qos),
                                                               **kwargs)
        self.counts[topic] = 0

    def write(self, topic: str, timestamp_ns: int, data: bytes) -> None:
        self._writer.write(self._connections[topic], int(timestamp_ns), data)
        self.counts[topic] += 1

    def set_custom_data(self, key: str, value: str) -> None:
        self._writer.set_custom_data(key, value)

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None

    def __enter__(self) -> BagWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def subscription_qos(transient_local: bool) -> Any:
    """A recorder's subscription: reliable (every message of a reliable publisher), latched topics
    transient_local so their last message reaches a recorder that joins late."""
    from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy

    return QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=10 if transient_local else 200,
                      reliability=ReliabilityPolicy.RELIABLE,
                      durability=DurabilityPolicy.TRANSIENT_LOCAL if transient_local else DurabilityPolicy.VOLATILE)


class Recorder:
    """Records topics seen by an rclpy ``node`` into a rosbag2, as ``ros2 bag record`` does: each message's
    CDR bytes as received, stamped with the node clock's receive time; a topic is added on its first
    message with the QoS profiles its publishers offer. ``on_message(topic, msgtype, data)`` also sees
    every message (decode what you need); with ``path`` None nothing is written.

    ``topics``: name → (rosbag2 type name, transient_local subscription).
    """

    def __init__(self, node: Any, topics: dict[str, tuple[str, bool]], path: str | Path | None,
                 on_message: Any = None) -> None:
        self.node, self.on_message = node, on_message
        self.writer = BagWriter(path) if path is not None else None
        self.subscriptions = [
            node.create_subscription(message_class(msgtype), topic,
                                     lambda data, t=topic, m=msgtype: self._receive(t, m, data),
                                     subscription_qos(latched), raw=True)
            for topic, (msgtype, latched) in topics.items()]

    def _receive(self, topic: str, msgtype: str, data: bytes) -> None:
        w = self.writer
        if w is not None:
            if not w.has(topic):
                offered = self.node.get_publishers_info_by_topic(topic)
                w.add(topic, msgtype, [qos_from_rclpy(i.qos_profile) for i in offered])
            w.write(topic, self.node.get_clock().now().nanoseconds, data)
        if self.on_message is not None:
            self.on_message(topic, msgtype, data)

    def close(self) -> dict[str, int]:
        """Stop recording, finish the bag; message counts per topic."""
        for sub in self.subscriptions:
            self.node.destroy_subscription(sub)
        self.subscriptions = []
        if self.writer is None:
            return {}
        self.writer.close()
        return dict(self.writer.counts)


@dataclass(frozen=True)
class TopicInfo:
    name: str
    msgtype: str
    count: int
    offered_qos: list
    msgdef: str
    digest: str


class BagReader:
    """A rosbag2 opened for reading; every failure is a ``BagError`` with a one-line reason."""

    def __init__(self, path: str | Path) -> None:
        from rosbags.rosbag2 import Reader, ReaderError

        self.path = Path(path)
        if not self.path.exists():
            raise BagError(f"{self.path} does not exist")
        if self.path.is_dir() and not (self.path / "metadata.yaml").is_file():
            raise BagError(f"{self.path} is not a rosbag2: a bag directory holds a metadata.yaml")
        if self.path.is_file() and self.path.suffix not in (".mcap", ".db3"):
            raise BagError(f"{self.path} is not a rosbag2: give a bag directory (with metadata.yaml), or an .mcap "
                           "or .db3 file")
        try:
            self._reader = Reader(self.path)
            self._reader.open()
        except (ReaderError, FileNotFoundError, OSError, KeyError, ValueError, TypeError) as exc:
            detail = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise BagError(f"{self.path} is not a readable rosbag2: {detail}") from exc
        self.topics: dict[str, TopicInfo] = {}
        for c in self._reader.connections:
            prev = self.topics.get(c.topic)
            qos_list = list(getattr(c.ext, "offered_qos_profiles", []) or [])
            count = c.msgcount + (prev.count if prev else 0)
            self.topics[c.topic] = TopicInfo(c.topic, c.msgtype, count, qos_list, c.msgdef.data, c.digest)

    @property
    def start_ns(self) -> int:
        return int(self._reader.start_time)

    @property
    def end_ns(self) -> int:
        return int(self._reader.end_time)

    def messages(self, topics: Iterable[str] | None = None) -> Iterator[tuple[str, int, bytes]]:
        """(topic, timestamp ns, CDR bytes) in timestamp order."""
        from rosbags.rosbag2 import ReaderError

        wanted = None if topics is None else set(topics)
        conns = [c for c in self._reader.connections if wanted is None or c.topic in wanted]
        if not conns:
            return
        try:
            for conn, t, data in self._reader.messages(connections=conns):
                yield conn.topic, int(t), bytes(data)
        except ReaderError as exc:
            raise BagError(f"{self.path}: {str(exc).splitlines()[0]}") from exc

    def close(self) -> None:
        self._reader.close()

    def __enter__(self) -> BagReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def deserialize(data: bytes, msgtype: str) -> Any:
    """An rclpy message from CDR bytes; ``BagError`` if the bytes do not decode as ``msgtype``."""
    from rclpy.serialization import deserialize_message

    cls = message_class(msgtype)
    try:
        return deserialize_message(data, cls)
    except Exception as exc:  # rclpy raises a bare RuntimeError/TypeError from its C layer
        raise BagError(f"a {msgtype} message does not decode: {exc}") from exc


def serialize(msg: Any) -> bytes:
    from rclpy.serialization import serialize_message

    return serialize_message(msg)


def merged(*streams: Iterable[tuple[int, str, bytes]]) -> Iterator[tuple[int, str, bytes]]:
    """Several (timestamp ns, topic, bytes) streams, each in time order, merged in time order."""
    return heapq.merge(*streams, key=lambda item: item[0])
