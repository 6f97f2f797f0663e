"""Keras 2.3.1's ``ProgbarLogger`` as a Keras 3 callback: the training log as Keras 2
printed it (``Epoch 1/3``, then kutils' ``Progbar``: plain ASCII, no colour codes)."""

from __future__ import annotations

from typing import Any

import keras

from kutils.progbar import Progbar

__all__ = ["Keras2ProgbarLogger"]


class Keras2ProgbarLogger(keras.callbacks.Callback):
    """Print ``Epoch i/n`` and a bar counting steps (verbose 1), or one line per epoch
    (verbose 2). ``stateful`` names the metrics shown as given (not averaged)."""

    def __init__(self, stateful: set[str]) -> None:
        super().__init__()
        self.stateful = set(stateful)
        self.target: Any = None
        self.seen = 0
        self.progbar: Progbar | None = None
        self.log_values: list[tuple[str, Any]] = []

    def on_epoch_begin(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        verbose, epochs = self.params["verbose"], self.params["epochs"]
        print(f"Epoch {epoch + 1}/{epochs}")
        self.target = self.params["steps"]
        self.progbar = Progbar(self.target, verbose=verbose, stateful_metrics=self.stateful)
        self.seen = 0

    def on_train_batch_begin(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        if self.target is None or self.seen < self.target:
            self.log_values = []

    def on_train_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        self.seen += 1
        self._collect(logs)
        # The last batch's update is the epoch end's, with the epoch's values.
        if self.progbar is not None and (self.target is None or self.seen < self.target):
            self.progbar.update(self.seen, self.log_values)

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        self._collect(logs)
        if self.progbar is not None:
            self.progbar.update(self.seen, self.log_values)

    def _collect(self, logs: dict[str, Any] | None) -> None:
        logs = logs or {}
        for name in self.params["metrics"]:
            if name in logs:
                self.log_values.append((name, logs[name]))
