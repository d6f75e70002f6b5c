"""Connection to the agent: newline-delimited JSON over a Unix stream socket (see PROTOCOL.md)."""

from __future__ import annotations

import json
import socket
import threading
from typing import Any

SOCKET_ENV = "BATON_HARNESS_SOCKET"

_encode = json.JSONEncoder(separators=(",", ":"), allow_nan=False).encode
_decode = json.JSONDecoder().decode


class HarnessError(Exception):
    """The agent refused a request, or the trial cannot talk to the agent."""


class Connection:
    """One persistent connection to the agent: one request line out, one response line in."""

    def __init__(self, path: str) -> None:
        """Connect to the harness socket at `path`."""
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.connect(path)
        except OSError as e:
            sock.close()
            raise HarnessError(
                f"cannot connect to the harness socket {path!r}: {e.strerror or e}"
            ) from e
        self._path = path
        self._sock: socket.socket | None = sock
        self._rfile = sock.makefile("rb")
        self._lock = threading.Lock()

    def call(self, request: dict[str, Any]) -> dict[str, Any]:
        """Send one request and return its response; raise HarnessError on `ok: false`."""
        line = (_encode(request) + "\n").encode("utf-8")
        with self._lock:
            sock = self._sock
            if sock is None:
                raise HarnessError("the harness connection is closed")
            try:
                sock.sendall(line)
                reply = self._rfile.readline()
            except OSError as e:
                raise HarnessError(
                    f"lost the connection to the agent during {request.get('op')!r}: {e}"
                ) from e
        if not reply:
            raise HarnessError(
                f"the agent closed the harness socket during {request.get('op')!r}"
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

    def close(self) -> None:
        """Close the connection; further calls raise HarnessError. Idempotent."""
        with self._lock:
            sock, self._sock = self._sock, None
            if sock is not None:
                self._rfile.close()
                sock.close()
