"""The online channel's frames, shared by the trusted side and the child's harness.

Fixed-size frames of little-endian float64 over a unix stream socket: trusted -> child
`[tag, item...]` (tag 1.0 an item, 0.0 the end), child -> trusted `[decision...]`. This module
is imported inside the sandbox too (the fork server loads it before any child exists), so it
depends on nothing but the standard library and numpy.
"""

from __future__ import annotations

import socket
import struct
from typing import Any

import numpy as np

ITEM, END = 1.0, 0.0


def recv_exact(sock: socket.socket, n: int) -> bytes | None:
    """Exactly `n` bytes, or None if the other end closed first."""
    buf = bytearray()
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            return None
        buf += chunk
    return bytes(buf)


class Channel:
    """The child's end: `recv()` the next item (None at the end), `send()` a decision.

    It holds one socket and nothing of the instance but the item it was last sent.
    """

    def __init__(self, sock: socket.socket, item_size: int, decision_size: int) -> None:
        self._sock = sock
        self._in = struct.Struct(f"<{item_size + 1}d")
        self._out = struct.Struct(f"<{decision_size}d")
        self.item_size = item_size
        self.decision_size = decision_size

    def recv(self) -> np.ndarray | None:
        data = recv_exact(self._sock, self._in.size)
        if data is None:
            return None
        frame = self._in.unpack(data)
        if frame[0] != ITEM:
            return None
        return np.array(frame[1:], dtype=np.float64)

    def send(self, decision: Any) -> None:
        values = np.asarray(decision, dtype=np.float64).ravel()
        if values.size != self.decision_size:
            raise ValueError(
                f"a decision is {self.decision_size} number(s), got {values.size}: {decision!r}"
            )
        self._sock.sendall(self._out.pack(*values.tolist()))
