"""``Progbar``: Keras 2's plain-text progress bar.

Keras 3's ``keras.utils.Progbar`` draws a coloured unicode bar (ANSI escapes even in
log files), defaults to ``width=20`` and, on the last update, shows the last value of
each averaged metric instead of its average. This is the Keras 2.3.1 bar: the same
output, defaults and averages. It imports no TensorFlow or Keras.
"""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Iterable
from typing import Any

import numpy as np

__all__ = ["Progbar"]


class Progbar:
    """Display a progress bar (Keras 2 API and output).

    Args:
        target: total number of steps expected, ``None`` if unknown.
        width: width of the bar, in characters.
        verbose: 0 (silent), 1 (a bar, redrawn at most every ``interval`` seconds) or 2
            (one line when ``target`` is reached).
        interval: minimum time between two redraws, in seconds.
        stateful_metrics: names of metrics shown as given (not averaged over steps).

    Example:
        >>> bar = Progbar(3, verbose=1)  # doctest: +SKIP
        >>> for step in range(1, 4):  # doctest: +SKIP
        ...     bar.update(step, values=[("loss", 0.5)])
        3/3 [==============================] - 0s 73us/step - loss: 0.5000

    Unlike Keras 3's ``Progbar``: plain ASCII output, ``width=30`` by default, averaged
    metrics stay averaged on the final update, and no ``finalize``/``unit_name``
    arguments.
    """

    def __init__(
        self,
        target: int | None,
        width: int = 30,
        verbose: int = 1,
        interval: float = 0.05,
        stateful_metrics: Iterable[str] | None = None,
    ) -> None:
        if target is not None and target < 0:
            msg = f"target must be None (unknown) or at least 0. Received: target={target!r}"
            raise ValueError(msg)
        self.target = target
        self.width = width
        self.verbose = verbose
        self.interval = interval
        self.stateful_metrics = set(stateful_metrics) if stateful_metrics else set()
        self._dynamic_display = (
            hasattr(sys.stdout, "isatty") and sys.stdout.isatty()
        ) or "ipykernel" in sys.modules
        self._total_width = 0
        self._seen_so_far = 0
        self._values: dict[str, Any] = {}
        self._start = time.time()
        self._last_update = 0.0

    def update(self, current: int, values: Iterable[Any] | None = None) -> None:
        """Update the bar to step ``current``.

        Args:
            current: index of the current step (the number of steps done).
            values: ``(name, value)`` pairs for the last step. A name in
                ``stateful_metrics`` is shown as given; others are shown as their
                average over the steps, weighted by the steps since the last update.
        """
        for name, value in values or []:
            if name in self.stateful_metrics:
                # Shown as given, with the numeric format of an average of one value.
                self._values[name] = [value, 1]
            else:
                steps = current - self._seen_so_far
                if name not in self._values:
                    self._values[name] = [value * steps, steps]
                else:
                    self._values[name][0] += value * steps
                    self._values[name][1] += steps
        self._seen_so_far = current

        now = time.time()
        info = f" - {now - self._start:.0f}s"
        if self.verbose == 1:
            if not self._draw(current, now, info):
                # Keras 2 returned here: the interval counts from the last redraw.
                return
        elif self.verbose == 2 and (self.target is None or current >= self.target):
            for name, (total, count) in self._values.items():
                avg = _average(total, count)
                # Keras 2 compared avg, not abs(avg), here: negative values use %e.
                info += f" - {name}: {avg:.4f}" if avg > 1e-3 else f" - {name}: {avg:.4e}"
            sys.stdout.write(info + "\n")
            sys.stdout.flush()
        self._last_update = now

    def add(self, n: int, values: Iterable[Any] | None = None) -> None:
        """Advance the bar by ``n`` steps (``update(seen_so_far + n, values)``)."""
        self.update(self._seen_so_far + n, values)

    def _draw(self, current: int, now: float, info: str) -> bool:
        """Redraw the bar; False (nothing drawn) within ``interval`` of the last redraw."""
        target = self.target
        if now - self._last_update < self.interval and target is not None and current < target:
            return False
        previous_width = self._total_width
        if self._dynamic_display:
            sys.stdout.write("\b" * previous_width + "\r")
        else:
            sys.stdout.write("\n")

        if target is not None:
            digits = math.floor(math.log10(target)) + 1 if target > 0 else 1
            # %d of the target, as Keras 2 printed it: a float target 4.0 shows as 4.
            bar = f"{int(current):{digits}d}/{int(target)} ["
            progress = float(current) / target if target > 0 else 1.0
            filled = int(self.width * progress)
            if filled > 0:
                bar += "=" * (filled - 1)
                bar += ">" if current < target else "="
            bar += "." * (self.width - filled) + "]"
        else:
            bar = f"{int(current):7d}/Unknown"
        self._total_width = len(bar)
        sys.stdout.write(bar)

        per_unit = (now - self._start) / current if current else 0.0
        if target is not None and current < target:
            eta = per_unit * (target - current)
            seconds = int(eta)
            if eta > 3600:
                eta_text = f"{seconds // 3600}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"
            elif eta > 60:
                eta_text = f"{seconds // 60}:{seconds % 60:02d}"
            else:
                eta_text = f"{seconds}s"
            info = " - ETA: " + eta_text
        elif per_unit >= 1:
            info += f" {per_unit:.0f}s/step"
        elif per_unit >= 1e-3:
            info += f" {per_unit * 1e3:.0f}ms/step"
        else:
            info += f" {per_unit * 1e6:.0f}us/step"

        for name, (total, count) in self._values.items():
            avg = _average(total, count)
            info += f" - {name}: {avg:.4f}" if abs(avg) > 1e-3 else f" - {name}: {avg:.4e}"

        self._total_width += len(info)
        if previous_width > self._total_width:
            info += " " * (previous_width - self._total_width)
        if target is not None and current >= target:
            info += "\n"
        sys.stdout.write(info)
        sys.stdout.flush()
        return True


def _average(total: Any, count: int) -> float:
    """The displayed value: the mean over an array value, as Keras 2 computed it."""
    return float(np.mean(total / max(1, count)))
