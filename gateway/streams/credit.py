"""Credit flow control of a WebSocket stream: how many records the server may send.

Two modes, decided by the client:

- credit: the client opened the stream with `credit=n` or has sent a
  `{"type": "credit", "records": n}` frame. The server then sends at most the
  records granted so far, less those sent since the first grant: never one
  more. Each grant adds to what is left (up to `MAX_CREDIT`).
- the default window (no credit ever given): the server sends as fast as the
  client reads, at most `frame_records` records a frame, and the next frame
  only once the previous one has left the server's send buffer, so what one
  connection holds in the server is one frame and the bounded send buffer.

Pure: no I/O, no clock. Records are counted, never bytes: a frame's bytes are
bounded apart (`TIDEGATE_STREAM_FRAME_BYTES`).
"""

from __future__ import annotations

MAX_CREDIT = 2**31 - 1
"""Most credit a connection may hold at once; a grant past it is clamped."""


class InvalidCredit(ValueError):
    """A grant that is not a positive integer."""


class CreditWindow:
    """The records a stream may still send. `credit=None`: the default window."""

    __slots__ = ("granted", "left", "sent")

    def __init__(self, credit: int | None = None) -> None:
        if credit is not None and credit < 0:
            raise InvalidCredit("initial credit must not be negative")
        # Records that may still be sent; None in the default window. Read as it is by
        # a feed's delivery (a plain attribute: no call per subscriber and frame).
        self.left: int | None = None if credit is None else min(credit, MAX_CREDIT)
        self.granted = 0 if credit is None else self.left or 0  # since credit mode began
        self.sent = 0  # records sent since credit mode began

    @property
    def credited(self) -> bool:
        """Whether the client has taken over flow control with credit."""
        return self.left is not None

    def grant(self, records: int) -> None:
        """Add `records` of credit (the first grant leaves the default window)."""
        if type(records) is not int or records < 1:
            raise InvalidCredit("credit must be a positive integer number of records")
        left = self.left or 0
        added = min(records, MAX_CREDIT - left)
        self.left = left + added
        self.granted += added

    def allowance(self, frame_records: int) -> int:
        """How many records the next frame may carry (0: wait for credit)."""
        if self.left is None:
            return frame_records
        return min(self.left, frame_records)

    def take(self, records: int, frame_records: int) -> bool:
        """`allowance` and `spend` in one call, for a frame of `records` (False: the
        window does not cover it, nothing spent). Run once per delivery of a feed."""
        left = self.left
        if left is None:
            return records <= frame_records
        if records > left or records > frame_records:
            return False
        self.left = left - records
        self.sent += records
        return True

    def refund(self, records: int) -> None:
        """Give back what `take` spent for a frame that did not go after all."""
        if self.left is not None:
            self.left += records
            self.sent -= records

    def spend(self, records: int) -> None:
        """`records` were sent; never more than `allowance` allowed."""
        if records < 0:
            raise ValueError("records must not be negative")
        if self.left is None:
            return
        if records > self.left:
            raise ValueError(f"sending {records} records with credit for {self.left}")
        self.left -= records
        self.sent += records
