"""Synthetic generator benchmark: rendering speed, and how much each named domain shift hurts a classifier.

``python scripts/benchmark.py synthetic [--quick]``

1. Speed: 224-px scenes per second, single-threaded (wall and CPU time; the CPU figure is what one core
   delivers on a shared machine), against the flat-colour-square renderer the generator replaces (a
   baseline run in the same process), plus one 3396 x 2547 section.
2. Domain shift: a small classifier trained on default imaging, tested on held-out scenes photographed
   the default way and under each shift (the *same* scenes, except ``lowmag`` which must recompose).
   Two classifiers: logistic regression on colour/texture statistics, and a tiny CNN (skipped with
   ``--no_cnn``). The accuracy drop per shift is the figure of merit: the shifts are real if it is > 0.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from PIL import Image

from ..minerals import PAPER_MINERALS
from ..synthetic import SHIFTS, render_scene, render_section
from ..synthetic.io import scene_seed
from ..synthetic.optics import CAMERA_D65, REFLECTANCE_RANGES, linear_to_srgb8

CNN_SIZE = 96  # input side of the tiny CNN (small enough for CPU, large enough to see blur and JPEG)


def flat_square(mineral: str, size: int, seed: int) -> np.ndarray:
    """The toy this generator replaces: one flat colour per class plus noise (speed baseline)."""
    rng = np.random.default_rng(seed)
    lo, hi = (np.asarray(v) / 100 for v in REFLECTANCE_RANGES[mineral if mineral != "stibnite" else "stibnite_r2"])
    rgb = CAMERA_D65 @ ((lo + hi) / 2) * 1.5
    img = np.broadcast_to(rgb.astype(np.float32), (size, size, 3)) + rng.normal(0, 0.01, (size, size, 3)).astype(np.float32)
    return linear_to_srgb8(img)


def speed(n: int, size: int = 224) -> dict[str, float]:
    classes = list(PAPER_MINERALS)
    jobs = [(classes[i % len(classes)], i) for i in range(n)]
    t0, c0 = time.perf_counter(), time.process_time()
    for m, i in jobs:
        render_scene(m, size, i)
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    t1 = time.perf_counter()
    for m, i in jobs:
        flat_square(m, size, i)
    flat = time.perf_counter() - t1
    return {"scenes": n, "size": size, "scenes_per_s_wall": round(n / wall, 1), "scenes_per_s_cpu": round(n / cpu, 1),
            "ms_per_scene_cpu": round(1000 * cpu / n, 2), "flat_square_per_s": round(n / flat, 1),
            "cost_vs_flat_square": round(wall / flat, 1), "target_per_s": 50,
            "ratio_vs_target_cpu": round(n / cpu / 50, 2)}


def features(img: np.ndarray) -> np.ndarray:
    """Colour and texture statistics of an image: what a simple classifier can use."""
    x = img.astype(np.float32) / 255
    lum = x.mean(-1)
    chroma = np.stack([x[..., 0] - x[..., 2], x[..., 1] - x[..., 2], x[..., 0] - x[..., 1]], -1)
    bright = lum > np.quantile(lum, 0.6)  # the ore, mostly
    ore = x[bright] if bright.sum() > 10 else x.reshape(-1, 3)
    gx, gy = np.abs(np.diff(lum, axis=1)), np.abs(np.diff(lum, axis=0))
    lap = np.abs(lum[1:-1, 1:-1] * 4 - lum[:-2, 1:-1] - lum[2:, 1:-1] - lum[1:-1, :-2] - lum[1:-1, 2:])
    parts = [
        x.reshape(-1, 3).mean(0), x.reshape(-1, 3).std(0), ore.mean(0), ore.std(0),
        np.quantile(x.reshape(-1, 3), [0.1, 0.5, 0.9, 0.99], axis=0).ravel(),
        chroma.reshape(-1, 3).mean(0), (chroma[bright].mean(0) if bright.sum() > 10 else np.zeros(3)),
        np.histogram(lum, bins=8, range=(0, 1))[0] / lum.size,
        [gx.mean(), gy.mean(), (gx > 0.1).mean(), lap.mean(), (lum > 0.97).mean()],
    ]
    return np.concatenate([np.ravel(p) for p in parts]).astype(np.float32)


def _dataset(n_per_class: int, size: int, base_seed: int, shift: str | None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(features, CNN-size uint8 images, labels): full-size images are not kept (memory stays small)."""
    feats, small, labels = [], [], []
    for k, m in enumerate(PAPER_MINERALS):
        for i in range(n_per_class):
            img = render_scene(m, size, scene_seed(base_seed, i), shift).image
            feats.append(features(img))
            small.append(np.asarray(Image.fromarray(img).resize((CNN_SIZE, CNN_SIZE), Image.Resampling.BOX)))
            labels.append(k)
    return np.stack(feats), np.stack(small), np.array(labels)


def _tiny_cnn_accuracy(train: tuple, tests: dict[str, tuple], epochs: int, seed: int = 0) -> dict[str, float]:
    import torch
    from torch import nn

    torch.manual_seed(seed)

    def tensor(imgs: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(imgs).permute(0, 3, 1, 2).float() / 255

    xtr, ytr = tensor(train[1]), torch.from_numpy(train[2])
    mean, std = xtr.mean((0, 2, 3), keepdim=True), xtr.std((0, 2, 3), keepdim=True)
    net = nn.Sequential(
        nn.Conv2d(3, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
        nn.Linear(64, len(PAPER_MINERALS)),
    )
    opt = torch.optim.Adam(net.parameters(), lr=3e-3)
    g = torch.Generator().manual_seed(seed)
    for _ in range(epochs):
        perm = torch.randperm(len(xtr), generator=g)
        for j in range(0, len(xtr), 32):
            b = perm[j : j + 32]
            xb = (xtr[b] - mean) / std
            if torch.rand(1, generator=g) < 0.5:  # flips and 90-degree turns: sections have no "up"
                xb = xb.flip(3)
            xb = torch.rot90(xb, int(torch.randint(0, 4, (1,), generator=g)), (2, 3))
            loss = nn.functional.cross_entropy(net(xb), ytr[b])
            opt.zero_grad()
            loss.backward()
            opt.step()
    net.eval()
    out = {}
    with torch.no_grad():
        for name, (_, imgs, y) in tests.items():
            pred = np.concatenate([net((tensor(imgs[j : j + 128]) - mean) / std).argmax(1).numpy()
                                   for j in range(0, len(imgs), 128)])
            out[name] = round(float((pred == y).mean()), 3)
    return out


def shifted_sets(make: Any, n_train: int, n_test: int, size: int, seeds: tuple[int, int], shifts: Any) -> tuple:
    """Train set on default imaging and one test set per shift, from separate seed streams; + seconds taken.

    ``make(n, size, seed_stream, shift)`` renders one set; the test sets share their stream, so every
    shift shows the same scenes under other imaging.
    """
    t0 = time.perf_counter()
    train = make(n_train, size, seeds[0], None)
    tests = {"default": make(n_test, size, seeds[1], None)}
    for sh in shifts:
        tests[sh] = make(n_test, size, seeds[1], sh)
    return train, tests, time.perf_counter() - t0


def shift_experiment(n_train: int, n_test: int, size: int, cnn: bool, epochs: int) -> dict[str, Any]:
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    train, tests, t_render = shifted_sets(_dataset, n_train, n_test, size, (0, 1), SHIFTS)
    clf = make_pipeline(StandardScaler(), LogisticRegression(max_iter=3000, C=0.5))
    clf.fit(train[0], train[2])
    acc = {k: round(float(clf.score(v[0], v[2])), 3) for k, v in tests.items()}
    result: dict[str, Any] = {
        "train_per_class": n_train, "test_per_class": n_test, "size": size, "classes": list(PAPER_MINERALS),
        "render_seconds": round(t_render, 1),
        "logreg_features": {"accuracy": acc, "drop_vs_default": {k: round(acc["default"] - v, 3) for k, v in acc.items() if k != "default"}},
    }
    if cnn:
        t1 = time.perf_counter()
        cacc = _tiny_cnn_accuracy(train, tests, epochs)
        result["tiny_cnn"] = {"epochs": epochs, "accuracy": cacc, "seconds": round(time.perf_counter() - t1, 1),
                              "drop_vs_default": {k: round(cacc["default"] - v, 3) for k, v in cacc.items() if k != "default"}}
    return result


@dataclass
class Arguments:
    no_cnn: bool = field(default=False, metadata={"help": "skip the tiny-CNN half of the shift experiment"})
    no_section: bool = field(default=False, metadata={"help": "skip the 3396 x 2547 section timing"})


def run(quick: bool, opts: Arguments) -> dict:
    try:
        import torch

        torch.set_num_threads(1)  # single-threaded speed figure; the CNN is small enough
    except ImportError:
        pass
    out: dict[str, Any] = {"synthetic": True, "speed_224": speed(150 if quick else 600)}
    if not opts.no_section:
        w, h = (3396, 2547)
        t0, c0 = time.perf_counter(), time.process_time()
        sec = render_section(w, h, seed=0)
        out["section"] = {"width": w, "height": h, "seconds_wall": round(time.perf_counter() - t0, 2),
                          "seconds_cpu": round(time.process_time() - c0, 2),
                          "ore_phases": sorted(k for k, v in sec.meta["phase_fractions"].items()
                                               if k not in ("quartz", "carbonate", "resin", "pit"))}
        del sec
    n_train, n_test, size, epochs = (40, 20, 128, 6) if quick else (200, 60, 224, 12)
    out["shift_experiment"] = shift_experiment(n_train, n_test, size, not opts.no_cnn, epochs)
    return out
