"""Connection to the agent: newline-delimited JSON over a Unix stream socket (see PROTOCOL.md)."""

from __future__ import annotations

import json
import os
import socket
import threading
import time
from typing import Any

SOCKET_ENV = "BATON_HARNESS_SOCKET"
RECONNECT_ENV = "BATON_HARNESS_RECONNECT_SECONDS"

_encode = json.JSONEncoder(separators=(",", ":"), allow_nan=False).encode
_decode = json.JSONDecoder().decode


class HarnessError(Exception):
    """The agent refused a request, or the trial cannot talk to the agent."""


class Connection:
    """One persistent connection to the agent: one request line out, one response line in."""

    def __init__(self, path: str) -> None:
        """Connect to the harness socket at `path`."""
        self._reconnect_seconds = _reconnect_seconds()
        self._path = path
        self._sock: socket.socket | None = _connect(path)
        self._rfile = self._sock.makefile("rb")
        self._lock = threading.Lock()

    def call(self, request: dict[str, Any]) -> dict[str, Any]:
        """Send one request and return its response; raise HarnessError on `ok: false`.

        When the agent daemon goes away (a restart), wait for the new one on the same socket for
        up to BATON_HARNESS_RECONNECT_SECONDS, initialize again and repeat the request (every
        request is safe to repeat).
        """
        line = (_encode(request) + "\n").encode("utf-8")
        with self._lock:
            if self._sock is None:
                raise HarnessError("the harness connection is closed")
            reply = self._exchange(line)
            if not reply and request.get("op") != "init" and self._reconnect_seconds > 0:
                self._reconnect(request.get("op"))
                reply = self._exchange(line)
        if not reply:
            raise HarnessError(
                f"lost the connection to the agent during {request.get('op')!r}"
            )
        try:
            response = _decode(reply.decode("utf-8"))
        except (UnicodeDecodeError, ValueError) as e:
            raise HarnessError(f"the agent sent a malformed response: {reply[:200]!r}") from e
        if not isinstance(response, dict):
            raise HarnessError(f"the agent sent a malformed response: {reply[:200]!r}")
        if response.get("ok") is not True:
            message = response.get("error") or "request refused without a message"
            raise HarnessError(f"{request.get('op')}: {message}")
        return response

    def _exchange(self, line: bytes) -> bytes:
        """Send one line and read one; b"" when the connection is gone."""
        try:
            assert self._sock is not None
            self._sock.sendall(line)
            return self._rfile.readline()
        except OSError:
            return b""

    def _reconnect(self, op: Any) -> None:
        """Wait for a (restarted) agent on the same socket and initialize the new connection."""
        deadline = time.monotonic() + self._reconnect_seconds
        self._rfile.close()
        if self._sock is not None:
            self._sock.close()
        while True:
            try:
                self._sock = _connect(self._path)
                self._rfile = self._sock.makefile("rb")
                reply = self._exchange((_encode({"op": "init"}) + "\n").encode("utf-8"))
                if reply and _decode(reply.decode("utf-8")).get("ok") is True:
                    return
            except (HarnessError, ValueError, UnicodeDecodeError):
                pass
            if time.monotonic() >= deadline:
                self._sock = None
                raise HarnessError(
                    f"lost the agent during {op!r} and no agent came back on {self._path!r} "
                    f"within {self._reconnect_seconds:g} s ({RECONNECT_ENV}): the trial stops"
                )
            time.sleep(0.2)

    def close(self) -> None:
        """Close the connection; further calls raise HarnessError. Idempotent."""
        with self._lock:
            sock, self._sock = self._sock, None
            if sock is not None:
                self._rfile.close()
                sock.close()


def _connect(path: str) -> socket.socket:
    """Open the harness socket at `path`."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.connect(path)
    except OSError as e:
        sock.close()
        raise HarnessError(
            f"cannot connect to the harness socket {path!r}: {e.strerror or e}"
        ) from e
    return sock


def _reconnect_seconds() -> float:
    """How long to wait for a restarted agent (BATON_HARNESS_RECONNECT_SECONDS; 0 disables)."""
    text = os.environ.get(RECONNECT_ENV, "0")
    try:
        value = float(text)
    except ValueError:
        raise HarnessError(f"{RECONNECT_ENV} must be a number of seconds, got {text!r}") from None
    if not value >= 0:
        raise HarnessError(f"{RECONNECT_ENV} must be >= 0, got {text!r}")
    return value
