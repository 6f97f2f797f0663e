"""The one-line progress bar ``get_file`` draws on stderr during a transfer."""

from __future__ import annotations

import sys
import time


class Progress:
    """A one-line progress bar on stderr, drawn once a transfer has run for ``delay`` s.

    ``enabled=None`` draws only when stderr is a terminal; False never; True always.
    """

    def __init__(self, enabled: bool | None, label: str, delay: float = 1.0) -> None:
        if enabled is None:
            enabled = bool(getattr(sys.stderr, "isatty", lambda: False)())
        self._enabled = enabled
        self._label = label
        self._delay = delay
        self._start = time.monotonic()
        self._next_draw = self._start + delay
        self._drawn = False
        self.total: int | None = None

    def update(self, done: int) -> None:
        if not self._enabled:
            return
        now = time.monotonic()
        if now < self._next_draw:
            return
        self._next_draw = now + 0.1
        self._draw(done, now)

    def _draw(self, done: int, now: float) -> None:
        elapsed = max(now - self._start, 1e-9)
        speed = done / elapsed / 1e6
        if self.total:
            fraction = min(done / self.total, 1.0)
            filled = int(30 * fraction)
            bar = "=" * filled + (">" if filled < 30 else "") + "." * (29 - filled)
            line = (
                f"{self._label}: {done / 1e6:.1f}/{self.total / 1e6:.1f} MB "
                f"[{bar}] {fraction:4.0%} {speed:.1f} MB/s"
            )
        else:
            line = f"{self._label}: {done / 1e6:.1f} MB {speed:.1f} MB/s"
        sys.stderr.write("\r" + line)
        sys.stderr.flush()
        self._drawn = True

    def finish(self, done: int) -> None:
        if self._drawn:
            self._draw(done, time.monotonic())
            sys.stderr.write("\n")
            sys.stderr.flush()
