"""A whole-section map must not starve single-grain requests: the mapper takes the model per batch.

Ordering, not timing: the map is held between two of its batches until a grain request has finished;
with a lock held for the whole map the grain request could not finish, and the map would time out."""

from __future__ import annotations

import threading

import numpy as np
from PIL import Image

from hf_minerals.fairlock import FairLock
from hf_minerals.predict import Predictor
from hf_minerals.service import MineralService


def test_grain_request_completes_while_a_map_is_in_progress(tiny_model_factory, tmp_path):
    predictor = Predictor.from_pretrained(tiny_model_factory("resnet"), batch_size=2, bf16=False)
    service = MineralService(predictor, model_id="tiny")
    rng = np.random.default_rng(0)
    section, grain = tmp_path / "section.png", tmp_path / "grain.png"
    Image.fromarray(rng.integers(100, 255, (336, 448, 3), dtype=np.uint8)).save(section)  # 12 tiles of 112 px
    Image.fromarray(rng.integers(0, 255, (64, 64, 3), dtype=np.uint8)).save(grain)

    map_started, grain_done, map_done = threading.Event(), threading.Event(), threading.Event()
    calls = {"map_batches": 0, "map_batches_when_grain_done": None}
    real_logits = Predictor.logits

    def logits(self, pixel_values):
        out = real_logits(self, pixel_values)
        if threading.current_thread().name == "mapper":
            calls["map_batches"] += 1
            if calls["map_batches"] == 1:
                map_started.set()
        return out

    def slow_preprocess(images, real=predictor.preprocess):
        if threading.current_thread().name == "mapper" and map_started.is_set() and not grain_done.is_set():
            grain_done.wait(timeout=60)  # between two map batches: hold the map until the grain is served
        return real(images)

    predictor.logits = logits.__get__(predictor)
    predictor.preprocess = slow_preprocess
    result: dict = {}

    def run_map() -> None:
        result["map"] = service.map_section(str(section), tile=112, unknown_threshold=0.0)
        map_done.set()

    mapper = threading.Thread(target=run_map, name="mapper")
    mapper.start()
    assert map_started.wait(timeout=60), "the map never started"
    answer = service.predict(str(grain), unknown_threshold=0.0)  # must not wait for the whole map
    calls["map_batches_when_grain_done"] = calls["map_batches"]
    grain_done.set()
    mapper.join(timeout=120)
    assert answer["label"] in predictor.labels
    assert map_done.is_set() and calls["map_batches"] > calls["map_batches_when_grain_done"] >= 1
    assert "Mapped 448x336 px" in result["map"][3]


def test_fair_lock_serves_waiters_in_arrival_order():
    lock = FairLock()
    order: list[int] = []
    lock.acquire()
    threads = []
    for i in range(5):
        t = threading.Thread(target=lambda i=i: (lock.acquire(), order.append(i), lock.release()))
        t.start()
        threads.append(t)
        while len(lock._queue) < i + 1:  # wait until thread i is queued before starting the next
            threading.Event().wait(0.001)
    lock.release()
    for t in threads:
        t.join(timeout=10)
    assert order == [0, 1, 2, 3, 4]


def test_locked_predictor_splits_batches_and_matches(tiny_model_factory):
    import torch

    from hf_minerals.fairlock import LockedPredictor

    predictor = Predictor.from_pretrained(tiny_model_factory("resnet"), batch_size=16, bf16=False)
    lock = FairLock()
    calls = []
    real = predictor.logits

    def counting(pixel_values):
        calls.append((len(pixel_values), lock._held))
        return real(pixel_values)

    predictor.logits = counting
    locked = LockedPredictor(predictor, lock, batch_size=3)
    x = predictor.preprocess([np.zeros((64, 64, 3), np.uint8) + i for i in range(7)])
    out = locked.logits(x)
    assert [n for n, _ in calls] == [3, 3, 1] and all(held for _, held in calls)  # one lock hold per batch
    predictor.logits = real
    torch.testing.assert_close(out, real(x))
    assert locked.labels == predictor.labels  # everything else is the predictor's
