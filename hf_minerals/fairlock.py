"""A first-come-first-served lock, and a predictor view that takes it per batch.

``threading.Lock`` is not fair: a thread that releases and re-acquires in a loop (a section mapper going
batch to batch) can starve the threads waiting for it (single-grain requests). Here waiters are served
in arrival order, so a grain request waits for at most the batch in flight, never the whole section.
"""

from __future__ import annotations

import threading
from collections import deque
from typing import Any


class FairLock:
    """FIFO mutual exclusion; usable as a context manager."""

    def __init__(self) -> None:
        self._cond = threading.Condition(threading.Lock())
        self._queue: deque[object] = deque()
        self._held = False

    def acquire(self) -> None:
        me = object()
        with self._cond:
            self._queue.append(me)
            while self._held or self._queue[0] is not me:
                self._cond.wait()
            self._queue.popleft()
            self._held = True

    def release(self) -> None:
        with self._cond:
            self._held = False
            self._cond.notify_all()

    def __enter__(self) -> FairLock:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


class LockedPredictor:
    """The predictor as the mapper sees it, with every model call (one batch) under ``lock``; everything
    else (reading, tiling, preprocessing, colour, accounting) runs outside it, alongside other requests."""

    def __init__(self, predictor: Any, lock: FairLock, batch_size: int | None = None) -> None:
        self._predictor = predictor
        self._lock = lock
        #: a small batch bounds how long a grain request can wait behind the map (one batch)
        self.batch_size = batch_size or predictor.batch_size

    def logits(self, pixel_values: Any) -> Any:
        import torch

        outs = []
        for chunk in pixel_values.split(self.batch_size):
            with self._lock:
                outs.append(self._predictor.logits(chunk))
        return torch.cat(outs) if outs else self._predictor.logits(pixel_values)

    def forward(self, pixel_values: Any) -> tuple[Any, Any]:
        """Logits and pooled features (the open-set score's input), the model taken per batch."""
        import torch

        logits, feats = [], []
        for chunk in pixel_values.split(self.batch_size):
            with self._lock:
                lg, ft = self._predictor.forward(chunk)
            logits.append(lg)
            feats.append(ft)
        if not logits:
            return self._predictor.forward(pixel_values)
        return torch.cat(logits), torch.cat(feats)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._predictor, name)
