"""Open set: does ``unknown`` catch what is not a known mineral? AUROCs with 95 % bootstrap CIs.

``python scripts/benchmark.py openset [--quick] [--model DIR --dataset DIR] [--n 100] [--bootstrap 1000]``

Model: ``--model`` (with ``--dataset``), else the quickstart model, else one trained here by the quickstart
recipe with fewer scenes (like the map benchmark). Calibration (temperature, confidence threshold) and
the open-set score (``hf_minerals.openset``) are fitted here, in memory, on the model's train and
validation splits: known minerals only, no negative of any kind, so every negative kind below is held
out. Known images: the test split. Negatives (all SYNTHETIC or drawn here, seeds 10 000+, never in
any split): blank/uniform fields, uniform fields with sensor noise, pure colours, noise, non-micrograph
pictures (text, gradients, checkerboards, random shapes, smooth colour clouds), gangue-only fields and
unseen minerals (galena, sphalerite: never a class of the model, though they appear as minor
neighbours in some training scenes).
"""

from __future__ import annotations

import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFilter, ImageFont

from ..calibration import calibrate_logits, dataset_logits
from ..minerals import EXTRA_MINERALS
from ..openset import DEFAULT_METHOD, METHODS, OODScorer
from ..openset.fit import OOD_KEEP, encode_images, fit_openset, split_features
from ..openset.scorer import KNOWN_ONLY_METHODS
from ..predict import Predictor
from .common import fill_quick

SEED0 = 10_000


# -- negative kinds ---------------------------------------------------------------------------------
def _uniform(rng: np.random.Generator, size: int) -> np.ndarray:
    level = rng.choice([0, 255]) if rng.random() < 0.3 else rng.integers(0, 256)
    return np.full((size, size, 3), level, np.uint8)


def _uniform_noisy(rng: np.random.Generator, size: int) -> np.ndarray:
    base = rng.integers(20, 236, 3)
    return np.clip(base + rng.normal(0, rng.uniform(1.5, 4.0), (size, size, 3)), 0, 255).astype(np.uint8)


def _pure_colour(rng: np.random.Generator, size: int) -> np.ndarray:
    rgb = rng.permutation([255, int(rng.integers(0, 256)), 0]) if rng.random() < 0.8 else rng.integers(0, 256, 3)
    return np.broadcast_to(np.asarray(rgb, np.uint8), (size, size, 3)).copy()


def _noise(rng: np.random.Generator, size: int) -> np.ndarray:
    kind = rng.integers(3)
    if kind == 0:
        return rng.integers(0, 256, (size, size, 3), dtype=np.uint8)
    if kind == 1:
        grey = rng.normal(rng.uniform(60, 200), rng.uniform(20, 60), (size, size, 1))
        return np.clip(np.repeat(grey, 3, 2), 0, 255).astype(np.uint8)
    return np.where(rng.random((size, size, 1)) < 0.5, 0, 255).repeat(3, 2).astype(np.uint8)


def _text(rng: np.random.Generator, size: int) -> np.ndarray:
    img = Image.new("RGB", (size, size), tuple(int(v) for v in rng.integers(150, 256, 3)))
    draw = ImageDraw.Draw(img)
    font = ImageFont.load_default()
    words = ["mineral", "sample", "lorem", "ipsum", "report", "2026", "figure", "scale", "table", "data"]
    for y in range(2, size, 12):
        line = " ".join(rng.choice(words, 4))
        draw.text((int(rng.integers(0, 8)), y), line, fill=tuple(int(v) for v in rng.integers(0, 90, 3)), font=font)
    return np.asarray(img)


def _gradient(rng: np.random.Generator, size: int) -> np.ndarray:
    a, b = rng.integers(0, 256, 3), rng.integers(0, 256, 3)
    yy, xx = np.mgrid[0:size, 0:size] / (size - 1)
    if rng.random() < 0.5:
        ang = rng.uniform(0, 2 * np.pi)
        t = (np.cos(ang) * xx + np.sin(ang) * yy)
        t = (t - t.min()) / max(np.ptp(t), 1e-6)
    else:
        t = np.clip(np.hypot(xx - rng.uniform(), yy - rng.uniform()) / rng.uniform(0.5, 1.2), 0, 1)
    return (a + (b - a) * t[..., None]).astype(np.uint8)


def _checkerboard(rng: np.random.Generator, size: int) -> np.ndarray:
    period = int(rng.integers(4, size // 3))
    a, b = rng.integers(0, 256, 3), rng.integers(0, 256, 3)
    yy, xx = np.mgrid[0:size, 0:size]
    on = ((xx // period + yy // period) % 2).astype(bool)
    return np.where(on[..., None], a, b).astype(np.uint8)


def _shapes(rng: np.random.Generator, size: int) -> np.ndarray:
    img = Image.new("RGB", (size, size), tuple(int(v) for v in rng.integers(0, 256, 3)))
    draw = ImageDraw.Draw(img)
    for _ in range(int(rng.integers(3, 12))):
        box = sorted(rng.integers(-size // 4, size + size // 4, 2)), sorted(rng.integers(-size // 4, size + size // 4, 2))
        xy = [box[0][0], box[1][0], box[0][1] + 2, box[1][1] + 2]
        fill = tuple(int(v) for v in rng.integers(0, 256, 3))
        (draw.ellipse if rng.random() < 0.5 else draw.rectangle)(xy, fill=fill)
    return np.asarray(img.filter(ImageFilter.GaussianBlur(float(rng.uniform(0, 1.5)))))


def _clouds(rng: np.random.Generator, size: int) -> np.ndarray:
    """Smooth colour noise (natural-looking, e.g. sky/foliage-like blotches)."""
    small = rng.integers(0, 256, (int(rng.integers(3, 9)),) * 2 + (3,), dtype=np.uint8)
    return np.asarray(Image.fromarray(small).resize((size, size), Image.BICUBIC))


#: group -> {kind: maker}. Every kind is held out: the score is fitted on known minerals only.
KINDS: dict[str, dict[str, Callable[[np.random.Generator, int], np.ndarray]]] = {
    "blank_uniform": {"uniform": _uniform, "uniform_with_sensor_noise": _uniform_noisy},
    "pure_colour": {"pure_colour": _pure_colour},
    "noise": {"noise": _noise},
    "non_micrograph": {"text": _text, "gradient": _gradient, "checkerboard": _checkerboard, "shapes": _shapes,
                       "clouds": _clouds},
}


def negatives(size: int, n: int) -> dict[str, dict[str, list[np.ndarray]]]:
    """group -> kind -> n images (uint8 HxWx3), each kind from its own seeded generator."""
    from ..synthetic import render_gangue, render_scene

    out: dict[str, dict[str, list[np.ndarray]]] = {}
    for g, (group, kinds) in enumerate(KINDS.items()):
        out[group] = {}
        for k, (kind, make) in enumerate(kinds.items()):
            rng = np.random.default_rng([SEED0, g, k])
            out[group][kind] = [make(rng, size) for _ in range(n)]
    out["gangue_only"] = {"gangue": [render_gangue(size, seed=SEED0 + i).image for i in range(n)]}
    out["unseen_minerals"] = {m: [render_scene(m, size=size, seed=SEED0 + i).image for i in range(n)]
                              for m in EXTRA_MINERALS}
    return out


# -- statistics --------------------------------------------------------------------------------------
def auroc(known: np.ndarray, unknown: np.ndarray) -> float:
    """P(an unknown image scores higher than a known one), ties half (``inf`` allowed)."""
    a, b = np.asarray(unknown)[:, None], np.asarray(known)[None, :]
    return float((a > b).mean() + 0.5 * (a == b).mean())


def auroc_ci(known: np.ndarray, unknown: np.ndarray, n_boot: int, seed: int = 0) -> dict[str, float]:
    """AUROC with a 95 % percentile bootstrap CI (known and unknown resampled independently)."""
    rng = np.random.default_rng(seed)
    boots = [auroc(known[rng.integers(0, len(known), len(known))], unknown[rng.integers(0, len(unknown), len(unknown))])
             for _ in range(n_boot)]
    lo, hi = np.percentile(boots, [2.5, 97.5])
    return {"auroc": round(auroc(known, unknown), 4), "ci95": [round(float(lo), 4), round(float(hi), 4)]}


def score_images(predictor: Predictor, images: list[Any]) -> dict[str, np.ndarray]:
    """Per image: open-set score, baselines (1 - max probability, energy) and the final answer."""
    logits, ood = predictor.view_scores(images)  # the Predictor's own answer (both views for photo-view models)
    probs = predictor.probabilities(logits)
    preds = predictor.decide(probs, top_k=1, ood_scores=ood)
    t = predictor.temperature
    threshold = predictor.unknown_threshold
    return {
        "low_confidence": probs.max(1) < threshold if threshold is not None else np.zeros(len(probs), bool),
        "ood": ood,
        "msp": 1.0 - probs.max(1),
        "energy": (-t * torch.logsumexp(logits / t, dim=1)).numpy(),
        "argmax": probs.argmax(1),
        "unknown": np.array([p.label == "unknown" for p in preds]),
        "ood_flag": np.array([p.unknown_reason in ("featureless or noise-like image", "not like a known mineral") for p in preds]),
    }


#: SELECTION outliers made from known validation images (none of them a test kind).
DEV_TRANSFORMS: dict[str, Callable[[np.ndarray, np.random.Generator], np.ndarray]] = {
    "pixel_shuffle": lambda a, rng: rng.permutation(a.reshape(-1, 3)).reshape(a.shape),
    "inverted": lambda a, rng: 255 - a,
    "channels_reversed": lambda a, rng: np.ascontiguousarray(a[..., ::-1]),
}


def method_selection(predictor: Predictor, ds: Any, n: int) -> dict[str, Any]:
    """The selection protocol (no test kind seen): per method, AUROC of known validation images against
    (a) each known class left out of the fit, (b) transformed validation images, (c) proxy unseen minerals
    and (d) selection non-micrographs (``openset.negatives``); the method's mark is the mean of the four
    group means. The library default (``openset.DEFAULT_METHOD``) is the best mark on the quickstart model."""
    from ..openset.negatives import selection_negatives

    tr, va = split_features(predictor, ds["train"], progress=False), split_features(predictor, ds["validation"], progress=False)
    val = [np.asarray(im.convert("RGB")) for im in ds["validation"]["image"]]
    rng = np.random.default_rng(1)
    groups = {"transformed_validation": {name: encode_images(predictor, [f(a, rng) for a in val])
                                         for name, f in DEV_TRANSFORMS.items()}}
    size = val[0].shape[0]
    groups.update({g: {k: encode_images(predictor, v) for k, v in kinds.items()}
                   for g, kinds in selection_negatives(size, n).items()})
    n_cls = len(predictor.labels)
    out: dict[str, Any] = {"negatives": {g: sorted(k) for g, k in groups.items()}, "n_per_kind": n}
    for method in KNOWN_ONLY_METHODS:
        loco = {}
        for c in range(n_cls):
            keep, vkeep = tr.labels != c, va.labels != c
            relabel = np.searchsorted([k for k in range(n_cls) if k != c], tr.labels[keep])
            d = OODScorer.fit(tr.features[keep], relabel, n_cls - 1, method, scale_features=va.features[vkeep],
                              colour=tr.colour[keep], scale_colour=va.colour[vkeep]).distance(va.features, va.colour)
            loco[predictor.labels[c]] = round(auroc(d[vkeep], d[~vkeep]), 4)
        scorer = OODScorer.fit(tr.features, tr.labels, n_cls, method, scale_features=va.features,
                               colour=tr.colour, scale_colour=va.colour)
        known = scorer.distance(va.features, va.colour)
        res: dict[str, Any] = {"leave_one_class_out": loco}
        for g, kinds in groups.items():
            res[g] = {k: round(auroc(known, scorer.distance(f, c)), 4) for k, (f, c) in kinds.items()}
        means = {g: float(np.mean(list(v.values()))) for g, v in res.items()}
        out[method] = {"selection_mean_auroc": round(float(np.mean(list(means.values()))), 4),
                       "group_means": {g: round(v, 4) for g, v in means.items()}, **res}
    out["best"] = max(KNOWN_ONLY_METHODS, key=lambda m: out[m]["selection_mean_auroc"])
    return out


def exposure_held_out_proxies(predictor: Predictor, ds: Any, n: int) -> dict[str, Any]:
    """Selection mark of ``exposure``: fitted as ``calibrate`` fits it (random minerals + non-micrograph families,
    ``openset.fit.encode_exposure_negatives``), AUROC of known validation images vs each proxy mineral, none of which it
    trained on."""
    from ..openset.fit import encode_exposure_negatives
    from ..openset.negatives import selection_negatives

    tr, va = split_features(predictor, ds["train"], progress=False), split_features(predictor, ds["validation"], progress=False)
    size = min(ds["validation"][0]["image"].size)
    nf, nc, _ = encode_exposure_negatives(predictor, size)
    scorer = OODScorer.fit(tr.features, tr.labels, len(predictor.labels), "exposure", colour=tr.colour, negatives=(nf, nc))
    known = scorer.distance(va.features, va.colour)
    out = {}
    for proxy, images in selection_negatives(size, n)["unseen_minerals"].items():
        out[proxy] = round(auroc(known, scorer.distance(*encode_images(predictor, images))), 4)
    return {"held_out_proxy_auroc": out, "mean": round(float(np.mean(list(out.values()))), 4)}


# -- run ----------------------------------------------------------------------------------------------
@dataclass
class Arguments:
    model: str | None = field(default=None, metadata={"help": "model folder (default: the quickstart model)"})
    dataset: str | None = field(default=None, metadata={"help": "the model's DatasetDict (train/validation/test)"})
    n: int | None = field(default=None, metadata={"help": "images per negative kind (default 40 quick, 100)"})
    bootstrap: int | None = field(default=None, metadata={"help": "bootstrap resamples (default 500 quick, 1000)"})
    keep: float = field(default=0.95, metadata={"help": "share of known validation images the confidence threshold keeps"})
    ood_keep: float = field(default=OOD_KEEP, metadata={"help": "share of known validation images the open-set threshold keeps"})
    method: str = field(default=DEFAULT_METHOD, metadata={
        "help": "open-set method; 'auto': the best known-only method on the SELECTION negatives (no test kind seen); 'exposure' (outlier exposure on random minerals; held-out-proxy mark)",
        "choices": ["auto", *METHODS]})
    threads: int | None = None


def resolve(opts: Arguments, workdir: Path, quick: bool) -> tuple[Path, Path, str]:
    from .map import resolve_model

    if opts.model:
        if not opts.dataset:
            raise SystemExit("--model needs --dataset (its DatasetDict with train/validation/test splits)")
        return Path(opts.model), Path(opts.dataset), f"given: {opts.model}"
    model, dataset, how = resolve_model(None, workdir, quick)
    if dataset is None:
        raise SystemExit("the quickstart model has no outputs/quickstart/dataset: run `make quickstart` again")
    return model, dataset, how


def run(quick: bool, opts: Arguments) -> dict[str, Any]:
    fill_quick(opts, quick, n=(40, 100), bootstrap=(500, 1000))
    if opts.threads:
        torch.set_num_threads(opts.threads)
    from ..data.loading import load_dataset_dict

    result: dict[str, Any] = {"data": "SYNTHETIC scenes and generated negatives (seeds 10000+)"}
    with tempfile.TemporaryDirectory() as tmp:
        model, dataset, how = resolve(opts, Path(tmp), quick)
        result["model"] = how
        ds = load_dataset_dict(dataset)
        predictor = Predictor.from_pretrained(model, batch_size=64, use_calibration=False)
        logits, labels = dataset_logits(predictor, ds["validation"], progress=False)
        cal = calibrate_logits(logits, labels, opts.keep)
        predictor.temperature, predictor.unknown_threshold = cal["temperature"], cal["unknown_threshold"]
        if opts.method == "auto":  # chosen on SELECTION negatives only (method_selection), before any test kind
            selection = method_selection(predictor, ds, opts.n)
            method = selection["best"]
        else:
            selection, method = None, opts.method
        predictor.ood, ood_record = fit_openset(predictor, ds, "train", "validation", opts.ood_keep, progress=False,
                                                method=method)
        predictor.ood_threshold = ood_record["threshold"]
        result["calibration"] = {**cal, "ood": ood_record}
        if predictor.photo_views:  # as calibration.json would: the training photos' imaging envelope
            from ..calibration import imaging_envelope
            from ..colour import ImagingEnvelope

            result["calibration"].update(imaging_envelope(ds["train"]))
            predictor.imaging_envelope = ImagingEnvelope.from_dict(result["calibration"]["imaging_envelope"])
        result["method_selection"] = selection or method_selection(predictor, ds, opts.n)
        if method == "exposure":
            result["method_selection"]["exposure_held_out_proxies"] = exposure_held_out_proxies(predictor, ds, opts.n)
        result["labels"] = predictor.labels

        test = ds["test"]
        names = test.features["label"].names
        known_imgs = [im.convert("RGB") for im in test["image"]]
        y = np.array([predictor.labels.index(names[v]) for v in test["label"]])
        size = known_imgs[0].size[0]
        print(f"openset: {len(known_imgs)} known test images, {opts.n} per negative kind, {size} px", file=sys.stderr)
        known = score_images(predictor, known_imgs)
        correct = known["argmax"] == y
        accepted = ~known["unknown"]
        result["known"] = {
            "n": int(len(y)),
            "accuracy_top1_all": round(float(correct.mean()), 4),
            "accuracy_when_answered": round(float(correct[accepted].mean()), 4) if accepted.any() else None,
            "share_flagged_unknown_total": round(float(known["unknown"].mean()), 4),
            "share_flagged_by_ood_score": round(float(known["ood_flag"].mean()), 4),
            "share_correct_and_answered": round(float((correct & accepted).mean()), 4),
        }
        k = result["known"]
        # the brief's "accuracy drop": accuracy among accepted vs overall (negative = accepted answers are better)
        k["accuracy_drop_answered_vs_all"] = round(k["accuracy_top1_all"] - (k["accuracy_when_answered"] or 0), 4)
        # stricter reading: correct answers lost to 'unknown' (share of all known images)
        k["correct_answers_lost"] = round(k["accuracy_top1_all"] - k["share_correct_and_answered"], 4)
        # strictest, what the open-set score itself costs: answers the confidence threshold alone would have
        # given, correctly, that the open-set score turns into 'unknown' (share of all known images)
        k["correct_answers_lost_to_ood_score"] = round(float((correct & ~known["low_confidence"] & known["ood_flag"]).mean()), 4)

        groups: dict[str, Any] = {}
        for group, kinds in negatives(size, opts.n).items():
            scored = {kind: score_images(predictor, imgs) for kind, imgs in kinds.items()}
            pooled = {s: np.concatenate([v[s] for v in scored.values()]) for s in ("ood", "msp", "energy", "unknown")}
            groups[group] = {
                "n": int(len(pooled["ood"])),
                "ood_score": auroc_ci(known["ood"], pooled["ood"], opts.bootstrap),
                "baseline_max_probability": auroc_ci(known["msp"], pooled["msp"], opts.bootstrap),
                "baseline_energy": auroc_ci(known["energy"], pooled["energy"], opts.bootstrap),
                "share_answered_unknown": round(float(pooled["unknown"].mean()), 4),
                "kinds": {kind: {"auroc_ood_score": round(auroc(known["ood"], v["ood"]), 4),
                                 "share_answered_unknown": round(float(v["unknown"].mean()), 4)}
                          for kind, v in scored.items()},
            }
        result["groups"] = groups
        targets = {"blank_uniform": 0.95, "pure_colour": 0.95, "noise": 0.95, "non_micrograph": 0.95,
                   "unseen_minerals": 0.80}
        result["targets"] = {g: {"target_auroc": t, "auroc": groups[g]["ood_score"]["auroc"],
                                 "met": groups[g]["ood_score"]["auroc"] >= t} for g, t in targets.items()}
        result["targets"]["known_accuracy_drop"] = {
            "target": 0.02, "value": k["correct_answers_lost_to_ood_score"], "met": k["correct_answers_lost_to_ood_score"] <= 0.02,
            "reading": "known images answered correctly by the confidence threshold alone that the open-set score turns "
                       "into 'unknown' (accuracy counting 'unknown' as wrong, with vs without the score)"}
        result["headline"] = {
            "method": result["calibration"]["ood"]["method_name"],
            "selection_best_method": result["method_selection"]["best"],
            **{f"auroc_{g}": f"{groups[g]['ood_score']['auroc']} [{groups[g]['ood_score']['ci95'][0]}, "
                             f"{groups[g]['ood_score']['ci95'][1]}]" for g in groups},
            "auroc_unseen_by_mineral": ", ".join(f"{m} {v['auroc_ood_score']}"
                                                 for m, v in groups["unseen_minerals"]["kinds"].items()),
            "known_accuracy_all_vs_answered": f"{k['accuracy_top1_all']} / {k['accuracy_when_answered']}",
            "known_accuracy_drop": k["correct_answers_lost_to_ood_score"],
            "targets_met": ", ".join(f"{g} {'yes' if v['met'] else 'NO'}" for g, v in result["targets"].items()),
        }
    return result
