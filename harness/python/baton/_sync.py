"""Rank synchronisation of a distributed trial: rank 0 relays its agent's answers to the other ranks
over TCP, one JSON object per line (see PROTOCOL.md, "Distributed trials")."""

from __future__ import annotations

import json
import select
import socket
import sys
import time
from dataclasses import dataclass
from typing import Any, BinaryIO, Mapping

from baton._client import HarnessError

RANK_ENV = "BATON_RANK"
WORLD_SIZE_ENV = "BATON_WORLD_SIZE"
LOCAL_RANK_ENV = "BATON_LOCAL_RANK"
LOCAL_WORLD_SIZE_ENV = "BATON_LOCAL_WORLD_SIZE"
SYNC_ADDR_ENV = "BATON_SYNC_ADDR"
SYNC_PORT_ENV = "BATON_SYNC_PORT"
SYNC_TIMEOUT_ENV = "BATON_SYNC_TIMEOUT_SECONDS"
DEFAULT_SYNC_TIMEOUT = 60.0
MAX_LINE_BYTES = 64 * 1024

_encode = json.JSONEncoder(separators=(",", ":"), allow_nan=False).encode
_decode = json.JSONDecoder().decode


@dataclass(frozen=True, slots=True)
class Ranks:
    """This process's place in the trial: its rank among all processes and on its agent."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    local_world_size: int = 1

    @staticmethod
    def from_env(env: Mapping[str, str]) -> Ranks:
        """Read BATON_RANK, BATON_WORLD_SIZE, BATON_LOCAL_RANK and BATON_LOCAL_WORLD_SIZE."""
        if not env.get(WORLD_SIZE_ENV):
            return Ranks()
        ranks = Ranks(
            rank=_int_env(env, RANK_ENV, 0),
            world_size=_int_env(env, WORLD_SIZE_ENV, 1),
            local_rank=_int_env(env, LOCAL_RANK_ENV, 0),
            local_world_size=_int_env(env, LOCAL_WORLD_SIZE_ENV, 1),
        )
        if ranks.world_size < 1:
            raise HarnessError(f"{WORLD_SIZE_ENV} must be >= 1, got {ranks.world_size}")
        if not 0 <= ranks.rank < ranks.world_size:
            raise HarnessError(
                f"{RANK_ENV} {ranks.rank} is not in 0..{ranks.world_size - 1} "
                f"({WORLD_SIZE_ENV} {ranks.world_size})"
            )
        if not 0 <= ranks.local_rank < ranks.local_world_size:
            raise HarnessError(
                f"{LOCAL_RANK_ENV} {ranks.local_rank} is not in 0..{ranks.local_world_size - 1} "
                f"({LOCAL_WORLD_SIZE_ENV} {ranks.local_world_size})"
            )
        return ranks


def sync_settings(env: Mapping[str, str]) -> tuple[str, int, float]:
    """BATON_SYNC_ADDR, BATON_SYNC_PORT and BATON_SYNC_TIMEOUT_SECONDS (default 60)."""
    host = env.get(SYNC_ADDR_ENV)
    if not host:
        raise HarnessError(f"{SYNC_ADDR_ENV} is not set: a distributed trial needs rank 0's address")
    port = _int_env(env, SYNC_PORT_ENV, None)
    if not 0 < port < 65536:
        raise HarnessError(f"{SYNC_PORT_ENV} must be a TCP port (1 to 65535), got {port}")
    text = env.get(SYNC_TIMEOUT_ENV) or str(DEFAULT_SYNC_TIMEOUT)
    try:
        timeout = float(text)
    except ValueError:
        raise HarnessError(f"{SYNC_TIMEOUT_ENV} must be a number of seconds, got {text!r}") from None
    if not timeout > 0:
        raise HarnessError(f"{SYNC_TIMEOUT_ENV} must be > 0, got {text!r}")
    return host, port, timeout


def listen(port: int, backlog: int) -> socket.socket:
    """Rank 0's listening socket on `port`, all interfaces (IPv6 and IPv4 where available)."""
    try:
        if socket.has_dualstack_ipv6():
            try:
                return socket.create_server(
                    ("", port), family=socket.AF_INET6, backlog=backlog, dualstack_ipv6=True
                )
            except OSError:
                pass  # no usable IPv6 here: IPv4 only, which reports its own error
        return socket.create_server(("", port), backlog=backlog)
    except OSError as e:
        raise HarnessError(
            f"rank 0 cannot listen on TCP port {port} ({SYNC_PORT_ENV}) for the other ranks: "
            f"{e.strerror or e}"
        ) from e


class Chief:
    """Rank 0's side: one connection per other rank, on which it sends what its agent answered."""

    def __init__(self, peers: dict[int, socket.socket]) -> None:
        """Take over the connected, welcomed ranks."""
        self._peers: dict[int, socket.socket] | None = peers
        self._ranks_by_fd = {sock.fileno(): rank for rank, sock in peers.items()}
        self._poll = select.poll()
        for sock in peers.values():
            self._poll.register(sock, select.POLLIN)

    @classmethod
    def accept(cls, listener: socket.socket, ranks: Ranks, timeout: float) -> Chief:
        """Accept every other rank on `listener` within `timeout` seconds, then close it."""
        port = listener.getsockname()[1]
        deadline = time.monotonic() + timeout
        peers: dict[int, socket.socket] = {}
        try:
            while len(peers) < ranks.world_size - 1:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    missing = sorted(set(range(1, ranks.world_size)) - set(peers))
                    raise HarnessError(
                        f"rank 0 waited {timeout:g} s ({SYNC_TIMEOUT_ENV}) on port {port} for "
                        f"ranks {missing} to connect; they never did"
                    )
                listener.settimeout(remaining)
                try:
                    sock, address = listener.accept()
                except TimeoutError:
                    continue
                rank, error = _welcome(sock, remaining, ranks, peers)
                if error is not None:
                    print(f"baton: refused a rank from {address[0]}: {error}", file=sys.stderr)
                    sock.close()
                else:
                    peers[rank] = sock
        except BaseException:
            for sock in peers.values():
                sock.close()
            raise
        finally:
            listener.close()
        return cls(peers)

    def send(self, message: Mapping[str, Any]) -> None:
        """Send `message` to every other rank; raise HarnessError naming a rank that is gone."""
        peers = self._open_peers()
        # The other ranks send nothing after joining: a readable connection is a closed one.
        for fd, _ in self._poll.poll(0):
            rank = self._ranks_by_fd[fd]
            try:
                data = peers[rank].recv(200)
            except OSError:
                data = b""
            if data:
                raise self._fail(rank, f"it sent {data!r} after joining, which no rank does")
            raise self._fail(rank, "its connection closed (the rank exited or died)")
        line = (_encode(message) + "\n").encode("utf-8")
        for rank, sock in peers.items():
            try:
                sock.sendall(line)
            except OSError as e:
                raise self._fail(rank, f"its connection failed ({e.strerror or e})") from e

    def close(self) -> None:
        """Close every rank's connection; they see it and stop. Idempotent."""
        peers, self._peers = self._peers, None
        for sock in (peers or {}).values():
            sock.close()

    def _open_peers(self) -> dict[int, socket.socket]:
        """The connections, unless an earlier failure closed them."""
        if self._peers is None:
            raise HarnessError("the connections to the other ranks are closed after an earlier failure")
        return self._peers

    def _fail(self, rank: int, what: str) -> HarnessError:
        """Close every connection and describe what happened with `rank`."""
        self.close()
        return HarnessError(f"lost rank {rank} of the trial: {what}")


class Worker:
    """A rank other than 0: one connection to rank 0, from which it learns what rank 0's agent
    answered."""

    def __init__(self, sock: socket.socket, reader: BinaryIO, rank: int) -> None:
        """Take over a connection rank 0 welcomed, with its buffered reader."""
        self._sock: socket.socket | None = sock
        self._reader = reader
        self.rank = rank

    @classmethod
    def connect(cls, host: str, port: int, ranks: Ranks, timeout: float) -> Worker:
        """Connect to rank 0, retrying for `timeout` seconds, and be welcomed as `ranks.rank`."""
        deadline = time.monotonic() + timeout
        # Rank 0 usually listens within a fraction of a second: retry soon, then back off.
        pause = 0.01
        while True:
            try:
                sock = socket.create_connection((host, port), timeout=timeout)
                break
            except OSError as e:
                if time.monotonic() >= deadline:
                    raise HarnessError(
                        f"rank {ranks.rank} could not connect to rank 0 at {host}:{port} within "
                        f"{timeout:g} s ({SYNC_TIMEOUT_ENV}): {e.strerror or e}"
                    ) from e
            time.sleep(pause)
            pause = min(pause * 2, 0.2)
        worker = cls(sock, sock.makefile("rb"), ranks.rank)
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            hello = {"op": "hello", "rank": ranks.rank, "world_size": ranks.world_size}
            sock.sendall((_encode(hello) + "\n").encode("utf-8"))
            line = worker._reader.readline(MAX_LINE_BYTES)
        except OSError as e:
            worker.close()
            raise HarnessError(
                f"rank {ranks.rank} lost its connection to rank 0 at {host}:{port} while joining: "
                f"{e.strerror or e}"
            ) from e
        reply = _decode_object(line)
        if reply is None or reply.get("ok") is not True:
            worker.close()
            reason = (reply or {}).get("error") or "rank 0 closed the connection without an answer"
            raise HarnessError(f"rank 0 at {host}:{port} refused rank {ranks.rank}: {reason}")
        sock.settimeout(None)
        return worker

    def wait(self, op: str, step: int) -> dict[str, Any]:
        """Rank 0's message `op` for `step`, skipping those of earlier steps."""
        while True:
            message = self._read(f"{op} of step {step}")
            sent = message.get("step")
            if not isinstance(sent, int) or isinstance(sent, bool):
                raise self._fail(f"rank 0 sent a message without a step: {message!r}")
            if sent < step or (sent == step and op == "checkpoint" and message.get("op") == "directive"):
                continue
            if sent == step and message.get("op") == op:
                return message
            raise self._fail(
                f"ranks out of step: rank {self.rank} waits for {op} of step {step}, rank 0 sent "
                f"{message.get('op')} of step {sent}; every rank calls report_training and "
                "checkpoint with the same steps"
            )

    def close(self) -> None:
        """Close the connection to rank 0. Idempotent."""
        sock, self._sock = self._sock, None
        if sock is not None:
            self._reader.close()
            sock.close()

    def _read(self, awaited: str) -> dict[str, Any]:
        """The next message of rank 0; HarnessError when its connection is gone."""
        if self._sock is None:
            raise HarnessError("the connection to rank 0 is closed after an earlier failure")
        try:
            line = self._reader.readline(MAX_LINE_BYTES)
        except (OSError, ValueError):
            line = b""
        if not line:
            raise self._fail(
                f"lost the connection to rank 0 while rank {self.rank} waited for {awaited} "
                "(rank 0 failed, exited or died)"
            )
        message = _decode_object(line)
        if message is None:
            raise self._fail(f"rank 0 sent a malformed message {line[:200]!r}")
        return message

    def _fail(self, what: str) -> HarnessError:
        """Close the connection and describe what happened."""
        self.close()
        return HarnessError(what)


def _welcome(
    sock: socket.socket, timeout: float, ranks: Ranks, peers: Mapping[int, socket.socket]
) -> tuple[int, str | None]:
    """Read a rank's hello and answer it: (its rank, None) when welcomed, else (-1, why not)."""
    try:
        sock.settimeout(timeout)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        with sock.makefile("rb") as reader:
            hello = _decode_object(reader.readline(MAX_LINE_BYTES))
    except OSError as e:
        return -1, f"no hello: {e.strerror or e}"
    rank = hello.get("rank") if hello is not None else None
    if hello is None or hello.get("op") != "hello" or not isinstance(rank, int):
        error = f"expected {{\"op\":\"hello\",\"rank\":N,\"world_size\":W}}, got {hello!r}"
    elif hello.get("world_size") != ranks.world_size:
        error = (
            f"rank {rank} says the trial has {hello.get('world_size')!r} ranks, rank 0 has "
            f"{ranks.world_size} ({WORLD_SIZE_ENV})"
        )
    elif not 1 <= rank < ranks.world_size:
        error = f"rank {rank} is out of range: the other ranks are 1 to {ranks.world_size - 1}"
    elif rank in peers:
        error = f"rank {rank} is already connected (two processes with {RANK_ENV}={rank}?)"
    else:
        error = None
    reply = {"ok": True} if error is None else {"ok": False, "error": error}
    try:
        sock.sendall((_encode(reply) + "\n").encode("utf-8"))
        sock.settimeout(None)
    except OSError as e:
        return -1, f"rank {rank} left before its welcome: {e.strerror or e}"
    return (rank, None) if error is None else (-1, error)


def _decode_object(line: bytes) -> dict[str, Any] | None:
    """One JSON object from `line`, or None."""
    try:
        value = _decode(line.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        return None
    return value if isinstance(value, dict) else None


def _int_env(env: Mapping[str, str], name: str, default: int | None) -> int:
    """An integer environment variable, `default` when absent (required when None)."""
    text = env.get(name)
    if not text:
        if default is None:
            raise HarnessError(f"{name} is not set: a distributed trial needs it")
        return default
    try:
        return int(text)
    except ValueError:
        raise HarnessError(f"{name} must be an integer, got {text!r}") from None
