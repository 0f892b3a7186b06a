"""Online problems: the trusted side reveals one item at a time and checks every decision.

For an online problem (bin packing: an item must be placed before the next one is seen) the
child's process must never hold the items still to come, or a program could look them up
(frames, `gc.get_objects()`, module globals) and beat any honest policy. So the instance stays
in the trusted evaluator's process, in an `OnlineSession`; the child's harness gets a `Channel`
and sees an item only after it has answered for the one before. Frames are fixed-size arrays of
float64: trusted -> child `[tag, item...]` (tag 1.0 an item, 0.0 the end), child -> trusted
`[decision...]`. The session checks each decision against its own state; what is scored is the
session's own record of the decisions (`outputs()`), never anything the child reports.

A problem's evaluator.py defines `online_session(instance, params) -> OnlineSession`; its
harness.py defines `run(program, inputs, channel)`, where `inputs` is `session.header()`.
"""

from __future__ import annotations

import socket
import struct
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from evolve.sandbox._channel import END, ITEM, Channel, recv_exact

__all__ = ["Channel", "ChildSilent", "OnlineError", "OnlineSession", "play_in_process", "serve"]


class OnlineError(ValueError):
    """A decision the session refuses (out of range, no room, malformed); says which and why."""


class ChildSilent(OnlineError):
    """The child stopped answering before every item was decided (it crashed, timed out or
    returned early): the sandbox's status says why, when it has a reason."""


class OnlineSession:
    """The trusted side of one online run over one instance.

    Subclasses set `item_size` and `decision_size` (floats per frame) and implement the four
    methods. The session holds the whole instance; only `next_item` reveals any of it.
    """

    item_size: int = 1
    decision_size: int = 1

    def header(self) -> dict[str, float | int]:
        """What the child may know before the first item (capacity, count of items...)."""
        return {}

    def next_item(self) -> Sequence[float] | None:
        """The next item (`item_size` numbers), or None when every item has been decided."""
        raise NotImplementedError

    def decide(self, decision: np.ndarray) -> None:
        """Check and apply the child's decision for the item last revealed; raise OnlineError."""
        raise NotImplementedError

    def outputs(self) -> dict[str, np.ndarray]:
        """The session's own record of the decisions: what the trusted evaluator scores."""
        raise NotImplementedError


def item_frame(session: OnlineSession, item: Sequence[float] | None) -> bytes:
    """The trusted side's frame for `item` (None: the end)."""
    fmt = struct.Struct(f"<{session.item_size + 1}d")
    if item is None:
        return fmt.pack(END, *([0.0] * session.item_size))
    values = [float(v) for v in item]
    if len(values) != session.item_size:
        raise OnlineError(
            f"the session produced an item of {len(values)} numbers, not {session.item_size}"
        )
    return fmt.pack(ITEM, *values)


def decision_from(session: OnlineSession, data: bytes) -> np.ndarray:
    """Parse a child's decision frame (exactly `decision_size` float64)."""
    return np.frombuffer(data, dtype="<f8", count=session.decision_size).astype(np.float64)


def play_in_process(
    session: OnlineSession,
    harness_run: Callable[..., Any],
    program: dict[str, Any],
) -> dict[str, np.ndarray]:
    """Run a harness against a session in this process, through a real socket pair.

    For tests and for trusted reference policies (first fit, best fit): the same frames and
    checks as a sandboxed run, without the sandbox. Never use it for a child's code.
    """
    import threading

    ours, theirs = socket.socketpair()
    error: list[BaseException] = []

    def child() -> None:
        try:
            harness_run(
                program, session.header(), Channel(theirs, session.item_size, session.decision_size)
            )
        except BaseException as exc:  # noqa: BLE001 - reported after the session ends
            error.append(exc)
        finally:
            theirs.close()

    t = threading.Thread(target=child, daemon=True)
    t.start()
    refused: OnlineError | None = None
    try:
        serve(session, ours)
    except OnlineError as exc:
        refused = exc
    finally:
        ours.close()
        t.join()
    # A harness that raised also stopped answering; its own error is the reason, not that.
    if error:
        raise error[0]
    if refused is not None:
        raise refused
    return session.outputs()


def serve(session: OnlineSession, sock: socket.socket) -> None:
    """The trusted loop: send an item, wait for its decision, check it; until the end.

    Raises OnlineError for a refused decision or a child that stopped answering early.
    """
    size = 8 * session.decision_size
    count = 0
    while True:
        item = session.next_item()
        if item is None:
            sock.sendall(item_frame(session, None))
            return
        sock.sendall(item_frame(session, item))
        data = recv_exact(sock, size)
        if data is None:
            raise ChildSilent(f"the program stopped answering after {count} item(s)")
        session.decide(decision_from(session, data))
        count += 1
