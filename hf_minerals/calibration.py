"""Calibration and the "unknown" answer.

A fine-tuned classifier is over-confident, and a section always holds minerals it never saw. We
(1) fit one temperature T on the validation split (LBFGS on the negative log-likelihood of
softmax(logits / T), Guo et al. 2017), then (2) choose the unknown threshold on the same split: the
calibrated confidence at which a target share (default 95 %) of the *correct* known-class answers is
kept. Both go into ``calibration.json`` in the model folder, which ``Predictor.from_pretrained`` reads.
(3) fits the open-set score (``hf_minerals.openset``: feature distance on the train split, threshold on
the validation split) so images unlike any known mineral are ``unknown`` however confident the model is.

CLI: ``hf-minerals calibrate --model DIR --dataset DIR [--split validation] [--keep 0.95] [--ood_keep 0.98]``.
"""

from __future__ import annotations

import json
import math
import os
import sys
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from .data.loading import load_split, model_ids
from .imageio import load_image
from .openset import DEFAULT_METHOD, METHODS, OOD_FILE
from .openset.fit import OOD_KEEP, fit_openset
from .predict import CALIBRATION_FILE, Predictor, softmax


def fit_temperature(logits: torch.Tensor, labels: torch.Tensor, max_iter: int = 200) -> float:
    """Temperature minimising the NLL of ``softmax(logits / T)``; optimised in log T so T stays > 0."""
    logits, labels = logits.detach().float(), labels.detach().long()
    log_t = torch.zeros(1, requires_grad=True)
    opt = torch.optim.LBFGS([log_t], lr=0.1, max_iter=max_iter, line_search_fn="strong_wolfe")

    def closure() -> torch.Tensor:
        opt.zero_grad()
        loss = F.cross_entropy(logits / log_t.exp(), labels)
        loss.backward()
        return loss

    opt.step(closure)
    t = float(log_t.detach().exp())
    if not math.isfinite(t):
        raise RuntimeError("temperature fit diverged (are the logits finite and the labels right?)")
    return min(max(t, 0.05), 100.0)


def choose_unknown_threshold(probs: np.ndarray, labels: np.ndarray, keep: float = 0.95) -> float:
    """Confidence below which answers become ``unknown``, keeping ``keep`` of the correct known answers."""
    if not 0 < keep <= 1:
        raise ValueError(f"keep must be in (0, 1], got {keep}")
    pred = probs.argmax(1)
    conf = probs.max(1)
    correct = conf[pred == labels]
    if correct.size == 0:
        raise ValueError("no correct predictions on the calibration data: cannot choose an unknown threshold")
    return float(np.quantile(correct, 1.0 - keep, method="lower"))


def expected_calibration_error(probs: np.ndarray, labels: np.ndarray, bins: int = 15) -> float:
    """ECE through the project's one ``ece`` metric module (equal-width confidence bins)."""
    from .metrics import load_metric

    out = load_metric("ece").compute(predictions=np.asarray(probs), references=np.asarray(labels), n_bins=bins)
    return float(out["expected_calibration_error"])


def calibrate_logits(logits: torch.Tensor, labels: torch.Tensor | np.ndarray, keep: float = 0.95) -> dict[str, Any]:
    """Fit T and the threshold from validation logits; returns the calibration record with its evidence."""
    y = torch.as_tensor(np.asarray(labels)).long()
    t = fit_temperature(logits, y)
    p0, p1 = softmax(logits), softmax(logits, t)
    yn = y.numpy()
    thr = choose_unknown_threshold(p1, yn, keep)
    return {
        "temperature": round(t, 6),
        "unknown_threshold": round(thr, 6),
        "keep_share_target": keep,
        "n_validation": int(len(yn)),
        "validation_accuracy": float((p1.argmax(1) == yn).mean()),
        "nll_before": float(F.cross_entropy(logits.float(), y)),
        "nll_after": float(F.cross_entropy(logits.float() / t, y)),
        "ece_before": expected_calibration_error(p0, yn),
        "ece_after": expected_calibration_error(p1, yn),
        "share_answered_unknown": float((p1.max(1) < thr).mean()),
    }


def write_calibration(model_dir: str | os.PathLike, record: dict[str, Any]) -> Path:
    path = Path(model_dir) / CALIBRATION_FILE
    path.write_text(json.dumps(record, indent=2) + "\n")
    return path


def dataset_logits(predictor: Predictor, split: Any, progress: bool = True) -> tuple[torch.Tensor, np.ndarray]:
    """Uncalibrated logits + model label ids for a ``datasets`` split with ``image``/``label`` columns.

    Data-set classes are matched to model labels by name; a class the model does not know is an error.
    """
    from tqdm.auto import tqdm

    to_model = model_ids(split.features["label"].names, predictor.labels)
    out, ys = [], []
    bs = predictor.batch_size
    for start in tqdm(range(0, len(split), bs), desc="calibration logits", disable=not progress):
        rows = split[start : start + bs]
        out.append(predictor.view_logits([load_image(im) for im in rows["image"]]))  # the logits the Predictor answers with
        ys.append(to_model[np.asarray(rows["label"])])
    return torch.cat(out), np.concatenate(ys)


def calibrate(
    model_dir: str | os.PathLike, dataset_dir: str | os.PathLike, split: str = "validation",
    keep: float = 0.95, batch_size: int = 32, progress: bool = True, ood_keep: float | None = OOD_KEEP,
    ood_fit_split: str = "train", ood_method: str = DEFAULT_METHOD,
) -> dict[str, Any]:
    """Fit on ``dataset_dir[split]`` (a ``save_to_disk`` DatasetDict) and write ``calibration.json``.

    ``ood_keep`` (None: no open-set score) is the share of ``split`` images the open-set threshold accepts;
    its feature distance is fitted on ``ood_fit_split``.
    """
    if not Path(model_dir).is_dir():
        from .model_loader import ModelLoadError

        raise ModelLoadError(("model folder not found" if not Path(model_dir).exists() else "not a model folder")
                             + f": '{model_dir}' (--model must be a local model folder: calibration.json is written into it)")
    previous = Path(model_dir) / CALIBRATION_FILE
    if previous.is_file() and "fitted_on" in (old := json.loads(previous.read_text())):
        warnings.warn(
            f"{previous} was fitted at training time on held-out validation groups ({old['fitted_on']}); re-fitting on "
            f"the whole '{split}' split includes the images that chose the checkpoint, which flatters the calibration",
            stacklevel=2,
        )
    data, _ = load_split(dataset_dir, split)
    predictor = Predictor.from_pretrained(model_dir, batch_size=batch_size, use_calibration=False, bf16=False, backend="torch")
    logits, labels = dataset_logits(predictor, data, progress=progress)
    record = {**calibrate_logits(logits, labels, keep), "split": split, "dataset": str(dataset_dir),
              **bf16_check(model_dir, data, logits, batch_size, progress)}
    fitted = None
    if predictor.photo_views:
        try:
            record.update(imaging_envelope(load_split(dataset_dir, ood_fit_split)[0], ood_fit_split))
        except KeyError:
            warnings.warn(f"no '{ood_fit_split}' split: no imaging envelope (both views always averaged)", stacklevel=2)
    if ood_keep is not None:
        fitted = fit_openset(predictor, dataset_dir, ood_fit_split, split, ood_keep, progress, ood_method)
    return _write(model_dir, record, fitted)


def imaging_envelope(train: Any, split_name: str = "train") -> dict[str, Any]:
    """``{"imaging_envelope": ...}``: the exposure / lamp-colour range of the photos a photo-view model was
    trained on (``colour.ImagingEnvelope``); outside it the Predictor answers from the normalised view alone."""
    from .colour import ImagingEnvelope, split_references

    return {"imaging_envelope": {**ImagingEnvelope.fit(split_references(train)).to_dict(), "split": split_name}}


def _write(model_dir: str | os.PathLike, record: dict[str, Any], fitted: tuple[Any, dict] | None) -> dict[str, Any]:
    """Save the open-set scorer (or delete a stale one) and ``calibration.json``: the two always agree."""
    if fitted is not None:
        scorer, record["ood"] = fitted
        scorer.save(model_dir)
    elif (stale := Path(model_dir) / OOD_FILE).exists():
        stale.unlink()  # a score fitted for an earlier calibration must not outlive it
    write_calibration(model_dir, record)
    return record


def bf16_check(model_dir: str | os.PathLike, split: Any, fp32_logits: torch.Tensor, batch_size: int,
               progress: bool) -> dict[str, Any]:
    """bf16-vs-fp32 top-1 agreement and max probability difference on held-out data, for the predictor's
    bf16 default (on only where the CPU runs bf16 natively and this reaches 99.5 %)."""
    from .predict import bf16_supported

    if not bf16_supported():
        return {"bf16_top1_agreement": None, "bf16_note": "not measured: this CPU has no native bf16"}
    bf16 = Predictor.from_pretrained(model_dir, batch_size=batch_size, use_calibration=False, bf16=True, backend="torch")
    logits, _ = dataset_logits(bf16, split, progress=progress)
    p32, p16 = torch.softmax(fp32_logits, -1), torch.softmax(logits, -1)
    return {"bf16_top1_agreement": float((p32.argmax(1) == p16.argmax(1)).float().mean()),
            "bf16_max_prob_diff": float((p32 - p16).abs().max()), "bf16_n": len(logits)}


def split_for_calibration(ds: Any, share: float = 0.5, seed: int = 0, label_column: str = "label",
                          group_column: str = "group") -> tuple[Any, Any]:
    """Split a validation set by group into (select, calibrate): disjoint groups, every class in both where it can.

    The *select* part chooses the checkpoint (the Trainer's eval set); the *calibrate* part, never seen by
    that choice, fits the temperature and the unknown threshold, so neither is tuned on the data that
    picked the model. Groups (``group`` column; each row its own group without one) stay whole; each
    group goes with its majority class, and ``share`` of each class's groups (at least one, never all)
    go to *calibrate*.
    """
    if not 0 < share < 1:
        raise ValueError(f"calibration share must be in (0, 1), got {share}")
    labels = np.asarray(ds[label_column])
    groups = np.asarray([str(g) for g in ds[group_column]]) if group_column in ds.column_names else np.arange(len(ds)).astype(str)
    by_group: dict[str, list[int]] = {}
    for i, g in enumerate(groups):
        by_group.setdefault(g, []).append(i)
    by_class: dict[int, list[str]] = {}
    for g, rows in sorted(by_group.items()):
        majority = int(np.bincount(labels[rows]).argmax())
        by_class.setdefault(majority, []).append(g)
    rng = np.random.default_rng(seed)
    held: set[str] = set()
    for c in sorted(by_class):
        names = by_class[c]
        rng.shuffle(names)
        k = min(len(names) - 1, max(1, round(share * len(names)))) if len(names) > 1 else 0
        held.update(names[:k])
    if not held or len(held) == len(by_group):
        raise ValueError(f"cannot split {len(by_group)} validation group(s) into selection and calibration parts")
    calib = [i for i, g in enumerate(groups) if g in held]
    select = [i for i, g in enumerate(groups) if g not in held]
    return ds.select(select), ds.select(calib)


def calibrate_split(model_dir: str | os.PathLike, split: Any, keep: float = 0.95, batch_size: int = 32,
                    fitted_on: str = "", progress: bool = False, ood_fit: Any | None = None,
                    ood_keep: float = OOD_KEEP, ood_method: str = DEFAULT_METHOD) -> dict[str, Any]:
    """Fit temperature + threshold on a ``datasets`` split and write ``calibration.json`` into ``model_dir``.

    ``ood_fit`` (a split, usually train): also fit the open-set distance on it, with its threshold on ``split``.
    """
    predictor = Predictor.from_pretrained(model_dir, batch_size=batch_size, use_calibration=False, bf16=False, backend="torch")
    logits, labels = dataset_logits(predictor, split, progress=progress)
    record = {**calibrate_logits(logits, labels, keep), **bf16_check(model_dir, split, logits, batch_size, progress)}
    if fitted_on:
        record["fitted_on"] = fitted_on
    if predictor.photo_views and ood_fit is not None:
        record.update(imaging_envelope(ood_fit))
    fitted = None
    if ood_fit is not None:
        import datasets

        parts = datasets.DatasetDict({"train": ood_fit, "calibration": split})
        fitted = fit_openset(predictor, parts, "train", "calibration", ood_keep, progress, ood_method)
    return _write(model_dir, record, fitted)


def open_set_report(
    predictor: Predictor, known_images: Sequence[Any], known_labels: Sequence[str], unknown_images: Sequence[Any],
) -> dict[str, Any]:
    """Open-set behaviour: accuracy on classes the model knows vs share of unseen minerals flagged unknown."""
    if predictor.unknown_threshold is None:
        raise ValueError("the predictor has no unknown_threshold (calibrate first)")
    known = predictor.predict(known_images, top_k=1)
    unseen = predictor.predict(unknown_images, top_k=1)
    answered = [(p.label, y) for p, y in zip(known, known_labels) if p.label != "unknown"]
    return {
        "unknown_threshold": predictor.unknown_threshold,
        "temperature": predictor.temperature,
        "n_known": len(known),
        "n_unseen": len(unseen),
        "known_accuracy_top1": float(np.mean([p.top_k[0]["label"] == y for p, y in zip(known, known_labels)])),
        "known_share_flagged_unknown": float(np.mean([p.label == "unknown" for p in known])),
        "known_accuracy_when_answered": float(np.mean([a == y for a, y in answered])) if answered else None,
        "unseen_share_flagged_unknown": float(np.mean([p.label == "unknown" for p in unseen])),
        # threshold-free: how well the top probability separates known from unseen (0.5 = not at all)
        "auroc_confidence_known_vs_unseen": _auroc([p.score for p in known], [p.score for p in unseen]),
    }


def _auroc(pos: Sequence[float], neg: Sequence[float]) -> float | None:
    """P(score of a random known image > that of a random unseen one), ties counted half."""
    if not len(pos) or not len(neg):
        return None
    a, b = np.asarray(pos)[:, None], np.asarray(neg)[None, :]
    return float((a > b).mean() + 0.5 * (a == b).mean())


@dataclass
class CalibrateArguments:
    """``hf-minerals calibrate``: fit the temperature, the unknown threshold and the open-set score, stored in the
    model folder."""

    model: str = field(metadata={"help": "local model folder (calibration.json and its .args.yaml are written into it)"})
    dataset: str = field(metadata={"help": "DatasetDict folder (save_to_disk) with a validation split"})
    split: str = "validation"
    keep: float = field(default=0.95, metadata={"help": "share of correct validation answers kept (0-1]"})
    batch_size: int = 32
    ood_keep: float = field(default=OOD_KEEP, metadata={
        "help": "share of --split images the open-set ('not a known mineral') threshold accepts (0-1]"})
    ood_fit_split: str = field(default="train", metadata={"help": "split the open-set feature distance is fitted on"})
    ood_method: str = field(default=DEFAULT_METHOD, metadata={"help": f"open-set score parts (or a +-sum): {', '.join(METHODS)}"})
    no_ood: bool = field(default=False, metadata={"help": "confidence threshold only, no open-set score"})


def main(argv: list[str] | None = None) -> int:
    from .cli_args import args_file_for, parse_command_line, save_args

    (args,) = parse_command_line([CalibrateArguments], argv, prog="hf-minerals calibrate")
    record = calibrate(args.model, args.dataset, args.split, args.keep, args.batch_size,
                       ood_keep=None if args.no_ood else args.ood_keep, ood_fit_split=args.ood_fit_split,
                       ood_method=args.ood_method)
    saved = save_args(args_file_for(Path(args.model) / CALIBRATION_FILE), args, command="hf-minerals calibrate")
    print(json.dumps(record, indent=2))
    print(f"wrote {Path(args.model) / CALIBRATION_FILE} and {saved}", file=sys.stderr)
    return 0
