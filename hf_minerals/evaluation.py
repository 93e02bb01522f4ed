"""Evaluate a model on a data-set split and write the report: numbers, tables and figures.

Every image goes through the one ``Predictor`` (deterministic eval preprocessing). The test split is
never augmented - the authors' code evaluates with random augmentation, which makes its scores noisy
and not repeatable; here two runs give identical files.

Outputs in ``output_dir``: ``eval_results.json``, ``per_class.md``, ``per_class.csv``,
``predictions.csv``, ``confusion_matrix.png``, ``reliability.png``.
"""

from __future__ import annotations

import csv
import json
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from .calibration import expected_calibration_error
from .data.loading import is_synthetic, load_split, model_ids
from .imageio import load_image
from .metrics import ECE_BINS, compute_all
from .plots import plot_confusion_matrix, plot_reliability
from .predict import BACKEND_HELP, Predictor, softmax
from .stats import bootstrap_ci, format_ci

RESULTS_FILE = "eval_results.json"


# -- inputs -------------------------------------------------------------------------------------------
def _predictor(model_or_dir: Any, batch_size: int, backend: str = "auto") -> tuple[Predictor, str]:
    if isinstance(model_or_dir, Predictor):
        config = getattr(model_or_dir.model, "config", None)
        return model_or_dir, str(getattr(config, "_name_or_path", "") or "<in-memory model>")
    return Predictor.from_pretrained(model_or_dir, batch_size=batch_size, backend=backend), str(model_or_dir)


def _reference_ids(ds: Any, model_labels: list[str]) -> np.ndarray:
    """Data-set labels as the model's class ids, matched by mineral name (orders may differ)."""
    import datasets

    if "label" not in ds.column_names or "image" not in ds.column_names:
        raise ValueError(f"the data set needs 'image' and 'label' columns; it has {ds.column_names}")
    raw = np.asarray(ds["label"], dtype=object)
    missing = [i for i, v in enumerate(raw) if v is None or (isinstance(v, (int, np.integer)) and v < 0)]
    if missing:
        raise ValueError(f"{len(missing)} examples have no label (first rows: {missing[:5]}); fix or drop them")
    feature = ds.features["label"]
    if isinstance(feature, datasets.ClassLabel):
        names = [feature.int2str(int(v)) for v in raw]
    elif all(isinstance(v, (int, np.integer)) for v in raw):  # bare ids: taken to be the model's ids
        bad = [int(v) for v in raw if v >= len(model_labels)]
        if bad:
            raise ValueError(f"label ids {sorted(set(bad))[:5]} out of range for the model's {len(model_labels)} classes")
        return raw.astype(np.int64)
    else:
        names = [str(v) for v in raw]
    return model_ids(names, model_labels)


def _images(ds: Any) -> Iterator[Any]:
    """Decoded RGB images; a row that cannot be decoded stops the run with its index and source."""
    rows = iter(ds.select_columns(["image"]))
    for i in range(len(ds)):
        try:
            # load_image normalises odd modes (16-bit, CMYK, palette, alpha) exactly as for files and uploads
            yield load_image(next(rows)["image"])
        except Exception as exc:  # noqa: BLE001 - re-raised with the row that failed
            src = ds.select_columns(["source_path"])[i]["source_path"] if "source_path" in ds.column_names else ""
            raise ValueError(f"example {i} {src} of the split cannot be read as an image: {exc}") from exc


# -- report ---------------------------------------------------------------------------------------
def _per_class_rows(results: dict[str, Any]) -> list[dict[str, Any]]:
    return [{"class": name, **vals} for name, vals in results["per_class"].items()]


def write_per_class(results: dict[str, Any], output_dir: Path) -> tuple[Path, Path]:
    """``per_class.csv`` and ``per_class.md`` (the table the model card embeds)."""
    rows = _per_class_rows(results)
    csv_path = output_dir / "per_class.csv"
    with csv_path.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=["class", "precision", "recall", "f1", "support"])
        writer.writeheader()
        for r in rows:
            writer.writerow({k: (f"{v:.4f}" if isinstance(v, float) else v) for k, v in r.items()})
    md_path = output_dir / "per_class.md"
    md_path.write_text(per_class_markdown(results) + "\n")
    return csv_path, md_path


def per_class_markdown(results: dict[str, Any]) -> str:
    """Markdown table: one row per class plus the macro average."""
    lines = ["| class | precision | recall | F1 | support |", "|---|---:|---:|---:|---:|"]
    for r in _per_class_rows(results):
        lines.append(f"| {r['class']} | {r['precision']:.3f} | {r['recall']:.3f} | {r['f1']:.3f} | {r['support']} |")
    lines.append(
        f"| **macro average** | {results['macro_precision']:.3f} | {results['macro_recall']:.3f} | "
        f"{results['macro_f1']:.3f} | {results['n']} |"
    )
    return "\n".join(lines)


def _write_predictions(path: Path, ds: Any, refs: np.ndarray, probs: np.ndarray, labels: list[str],
                       groups: list[Any] | None = None) -> None:
    """One row per image; ``group`` lets ``compare.py`` resample by group for paired differences."""
    sources = ds["source_path"] if "source_path" in ds.column_names else [""] * len(refs)
    groups = groups if groups is not None else [f"row-{i}" for i in range(len(refs))]
    preds = probs.argmax(axis=1)
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["index", "source_path", "group", "label", "predicted", "confidence", "correct"])
        for i, (src, g, t, p) in enumerate(zip(sources, groups, refs, preds)):
            w.writerow([i, src, g, labels[t], labels[p], f"{probs[i, p]:.6f}", int(t == p)])


def _batches(items: Iterator[Any], size: int) -> Iterator[list[Any]]:
    batch: list[Any] = []
    for item in items:
        batch.append(item)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def default_output_dir(model: str, split: str) -> Path:
    slug = re.sub(r"[^A-Za-z0-9._-]+", "_", Path(model.rstrip("/")).name or "model")
    return Path("outputs") / "eval" / f"{slug}-{split}"


def evaluate_and_report(
    model_or_dir: Any,
    dataset_or_dir: Any,
    split: str = "test",
    output_dir: str | os.PathLike | None = None,
    batch_size: int = 32,
    *,
    n_bins: int = ECE_BINS,
    max_samples: int | None = None,
    synthetic: bool | None = None,
    progress: bool = True,
    backend: str = "auto",
) -> dict[str, Any]:
    """Predict ``split`` with the Predictor, compute every metric, write the report files; return the results.

    ``model_or_dir``: a model folder, Hub id, or a ready ``Predictor``. ``dataset_or_dir``: a DatasetDict or
    Dataset, a ``save_to_disk`` folder, or a Hub id. ``synthetic`` overrides what the data set says.
    ``backend``: the forward pass of a Predictor built here (``Predictor.from_pretrained``).
    """
    predictor, model_name = _predictor(model_or_dir, batch_size, backend)
    ds, dataset_name = load_split(dataset_or_dir, split)
    if max_samples is not None:
        ds = ds.select(range(min(max_samples, len(ds))))
    if len(ds) == 0:
        raise ValueError(f"split '{split}' of {dataset_name} is empty")
    labels = predictor.labels
    refs = _reference_ids(ds, labels)
    is_synth = is_synthetic(ds) if synthetic is None else bool(synthetic)

    chunks = []
    with tqdm(total=len(ds), desc=f"evaluating {split}", unit="img", disable=not progress) as bar:
        for batch in _batches(_images(ds), predictor.batch_size):
            chunks.append(predictor.view_logits(batch))  # what the Predictor answers (photo views included)
            bar.update(len(batch))
    logits = torch.cat(chunks, dim=0)
    probs = predictor.probabilities(logits)  # calibrated (temperature of calibration.json, if any)
    groups = ds["group"] if "group" in ds.column_names else None

    metrics = compute_all(refs, probs, labels, n_bins=n_bins)
    calibrated = predictor.calibration is not None or predictor.temperature != 1.0
    results = {
        "model": model_name,
        "dataset": dataset_name,
        "split": split,
        "synthetic": is_synth,
        **metrics,
        "ece_bins": n_bins,
        "ece_uncalibrated": expected_calibration_error(softmax(logits, 1.0), refs, n_bins),
        "ece_calibrated": metrics["ece"] if calibrated else None,
        "temperature": predictor.temperature,
        "calibration": predictor.calibration,
        "ci": bootstrap_ci(refs, probs.argmax(1), len(labels), groups),
        "preprocessing": predictor.data_config.to_dict(),
    }

    out = Path(output_dir) if output_dir is not None else default_output_dir(model_name, split)
    out.mkdir(parents=True, exist_ok=True)
    (out / RESULTS_FILE).write_text(json.dumps(results, indent=2) + "\n")
    write_per_class(results, out)
    _write_predictions(out / "predictions.csv", ds, refs, probs, labels, groups)
    plot_confusion_matrix(
        results["confusion_matrix"], labels, out / "confusion_matrix.png", title=f"Confusion matrix, {split}", synthetic=is_synth
    )
    plot_reliability(
        results["calibration_bins"], out / "reliability.png", ece=results["ece"], title=f"Reliability, {split}", synthetic=is_synth
    )
    results["output_dir"] = str(out)
    return results


def summary_line(results: dict[str, Any]) -> str:
    tag = " [SYNTHETIC data]" if results.get("synthetic") else ""
    ci = results.get("ci") or {}
    ece = f"ECE={results['ece']:.4f}"
    if results.get("ece_calibrated") is not None:
        ece = f"ECE uncalibrated={results['ece_uncalibrated']:.4f} calibrated={results['ece_calibrated']:.4f}"
    return (
        f"{results['split']}: n={results['n']} accuracy={format_ci(results['accuracy'], ci.get('accuracy'), '.4f')} "
        f"macro_f1={format_ci(results['macro_f1'], ci.get('macro_f1'), '.4f')} "
        f"macro_precision={results['macro_precision']:.4f} macro_recall={results['macro_recall']:.4f} "
        f"{ece}{tag}" + (f" (95% CIs: bootstrap by {ci['resampled_by']})" if ci else "")
    )


@dataclass
class EvaluateArguments:
    """``hf-minerals evaluate``: score a model on a data-set split and write the report."""

    model: str = field(metadata={"help": "model folder or Hub id"})
    dataset: str = field(metadata={"help": "data-set folder (save_to_disk) or Hub id"})
    split: str = "test"
    output_dir: str | None = field(default=None, metadata={"help": "report folder (default outputs/eval/<model>-<split>)"})
    batch_size: int = 32
    n_bins: int = field(default=ECE_BINS, metadata={"help": "confidence bins of the ECE / reliability diagram"})
    max_samples: int | None = field(default=None, metadata={"help": "evaluate only the first N examples (quick look)"})
    backend: str = field(default="auto", metadata={"help": BACKEND_HELP, "choices": ["auto", "torch", "onnx"]})


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """``scripts/eval_model.py`` / ``hf-minerals evaluate``."""
    from .cli_args import parse_command_line, save_args

    (args,) = parse_command_line([EvaluateArguments], argv, prog="hf-minerals evaluate")
    results = evaluate_and_report(
        args.model, args.dataset, args.split, args.output_dir, args.batch_size, n_bins=args.n_bins,
        max_samples=args.max_samples, backend=args.backend,
    )
    args.output_dir = results["output_dir"]
    save_args(Path(args.output_dir) / "args.yaml", args, command="hf-minerals evaluate")
    print(summary_line(results))
    print(f"report written to {results['output_dir']}/ ({RESULTS_FILE}, per_class.md, confusion_matrix.png, "
          "reliability.png, args.yaml)")
    return results
