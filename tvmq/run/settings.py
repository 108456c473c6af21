"""Measurement settings as frozen records; CLI flags map onto them one to one."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from ..errors import TvmqError
from ..machine import available_cores


@dataclass(frozen=True)
class MeasureSettings:
    """How one candidate is timed.

    Attributes
    ----------
    number : int
        Runs per timing sample (``time_evaluator`` number).
    repeat : int
        Samples; every sample is recorded.
    min_repeat_ms : int
        Lower bound on one sample's duration (number grows to reach it).
    timeout_s : float
        A candidate still running after this is killed and recorded as ``timeout``.
    flush_cache : bool
        Cold weights: before each sample, flush from the CPU caches every argument but the first (the
        input, which the previous layer of a network has just written), and time one run per sample
        (``number`` and ``min_repeat_ms`` then do not apply: a second run would find the weights cached).
        How a kernel runs inside a network whose weights do not fit in the caches.
    threads : int
        TVM runtime threads; default the cores this process may use (TVM's own default halves
        the logical CPUs, assuming hyper-threads, and so uses 1 on a 2-vCPU VM).
    build_workers : int
        Parallel compile processes.
    build_timeout_s : float
        A compile still running after this is recorded as ``build_error``.
    seed : int
        Seed of the random inputs used to verify and time each candidate.
    """

    number: int = 1
    repeat: int = 5
    min_repeat_ms: int = 20
    timeout_s: float = 30.0
    flush_cache: bool = False
    threads: int = field(default_factory=available_cores)
    build_workers: int = 2
    build_timeout_s: float = 60.0
    seed: int = 0

    def __post_init__(self):
        for f in ("number", "repeat", "threads", "build_workers"):
            if getattr(self, f) < 1:
                raise TvmqError(f"measure setting {f} must be >= 1, got {getattr(self, f)}")
        if self.timeout_s <= 0:
            raise TvmqError(f"measure setting timeout_s must be > 0, got {self.timeout_s}")

    def to_dict(self):
        return asdict(self)

    @classmethod
    def from_flags(cls, a) -> "MeasureSettings":
        """From the measurement flags (``--number --repeat ... --seed``), one to one."""
        return cls(number=a.number, repeat=a.repeat, min_repeat_ms=a.min_repeat_ms, timeout_s=a.timeout,
                   flush_cache=bool(a.flush_cache), threads=a.threads, build_workers=a.build_workers,
                   build_timeout_s=a.build_timeout, seed=a.seed)


@dataclass(frozen=True)
class RPCSettings:
    """Where candidates run remotely: a TVM RPC tracker and a device key."""

    tracker_host: str = "127.0.0.1"
    tracker_port: int = 9190
    key: str = "rasp3b"
    priority: int = 1
    session_timeout_s: float = 120.0
    connect_timeout_s: float = 30.0

    @classmethod
    def parse(cls, tracker: str, key: str, **kw) -> "RPCSettings":
        host, sep, port = tracker.rpartition(":")
        if not sep or not host or not port.isdigit():
            raise TvmqError(f"--rpc-tracker must be HOST:PORT, got {tracker!r}")
        return cls(tracker_host=host, tracker_port=int(port), key=key, **kw)

    @classmethod
    def from_flags(cls, a, target) -> "RPCSettings | None":
        """From ``--rpc-tracker --rpc-key --rpc-priority --rpc-session-timeout``; None without a tracker."""
        if not a.rpc_tracker:
            return None
        return cls.parse(a.rpc_tracker, a.rpc_key or target.rpc_key or cls.key, priority=a.rpc_priority,
                         session_timeout_s=a.rpc_session_timeout)

    @property
    def address(self) -> str:
        return f"{self.tracker_host}:{self.tracker_port}"

    def to_dict(self):
        return asdict(self)
