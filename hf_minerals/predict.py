"""The one predictor: CLI, Space, mapper, evaluator, explainer and benchmarks all classify through it.

Batched, ``torch.inference_mode``, preprocessing on tensors via ``preprocessing.eval_transform``.
Options measured in ``scripts/benchmark.py predict`` (see docs/mapping.md): bf16 autocast (off by
default: it is ~2x faster on CPUs with AMX/AVX512-bf16 but changes probabilities in the 2nd-3rd
decimal) and channels_last (helps conv nets only together with bf16; slows fp32 on oneDNN).

CLI: ``hf-minerals predict --images IMAGES... --model DIR_OR_ID [--top_k 3] [--output_file preds.csv]``.
"""

from __future__ import annotations

import csv
import os
import sys
import warnings
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from .imageio import ImageLoadError, load_image
from .inputs import scan_paths
from .model_loader import CALIBRATION_FILE, load_model, read_calibration
from .preprocessing import DataConfig, eval_transform, to_uint8_tensor

UNKNOWN = "unknown"
__all__ = ["CALIBRATION_FILE", "Prediction", "Predictor", "read_calibration"]
#: model_type values of transformer backbones (channels_last does nothing useful for them).
_NON_CONV = ("swin", "vit", "deit", "beit", "dinov2", "convnextv2_", "swinv2")


@dataclass
class Prediction:
    """Top-k answer for one image; ``label`` is ``unknown`` when the top score is under the threshold."""

    label: str
    score: float
    top_k: list[dict[str, float | str]]


def bf16_supported() -> bool:
    """True when this CPU runs bf16 matmuls natively (AVX512-bf16 / AMX); elsewhere bf16 is emulated and slow."""
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


def softmax(logits: torch.Tensor, temperature: float = 1.0) -> np.ndarray:
    """``softmax(logits / T)`` over the last axis in float32, as numpy: the ONE place probabilities come from
    (predictor, explainer, calibration), so a calibrated temperature means the same everywhere."""
    return torch.softmax(logits.detach().float() / temperature, dim=-1).numpy()


class Predictor:
    """Wraps a classifier + its data config for batched inference."""

    def __init__(
        self,
        model: torch.nn.Module,
        data_config: DataConfig,
        *,
        batch_size: int = 32,
        num_threads: int | None = None,
        temperature: float = 1.0,
        unknown_threshold: float | None = None,
        bf16: bool = False,
        channels_last: bool | None = None,
        device: str | torch.device = "cpu",
    ) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        if temperature <= 0:
            raise ValueError(f"temperature must be > 0, got {temperature}")
        self.device = torch.device(device)
        self.model = model.eval().to(self.device)
        self.data_config = data_config
        self.batch_size = batch_size
        self.temperature = float(temperature)
        self.unknown_threshold = unknown_threshold
        self.bf16 = bool(bf16)
        self.calibration: dict[str, Any] | None = None  # what calibration.json held, if read
        self.provenance: dict[str, Any] = {}  # where the model came from (``loading.load_model``)
        if self.bf16 and self.device.type == "cpu" and not bf16_supported():
            warnings.warn("bf16 requested but this CPU has no native bf16: it will be emulated (slow)", stacklevel=2)
        cfg = model.config
        is_conv = not str(getattr(cfg, "model_type", "")).startswith(_NON_CONV)
        self.channels_last = (self.bf16 and is_conv) if channels_last is None else bool(channels_last)
        if self.channels_last:
            self.model = self.model.to(memory_format=torch.channels_last)
        if num_threads:
            torch.set_num_threads(num_threads)
        if self.device.type == "cpu":
            # Denormal floats (common in random-init and some fine-tuned conv nets) slow CPU convolutions
            # 10-100x; flushing them to zero changes outputs below 1e-38 only. Process-wide, like threads.
            torch.set_flush_denormal(True)
        self.id2label: dict[int, str] = {int(k): v for k, v in cfg.id2label.items()}
        self.labels: list[str] = [self.id2label[i] for i in range(len(self.id2label))]

    @classmethod
    def from_pretrained(
        cls,
        model_id: str | os.PathLike,
        *,
        temperature: float | None = None,
        unknown_threshold: float | None = None,
        use_calibration: bool = True,
        **kwargs: Any,
    ) -> Predictor:
        """Load model + processor + calibration through the one loader (``hf_minerals.model_loader``).

        ``calibration.json`` (written by ``hf-minerals calibrate``) supplies temperature and unknown
        threshold unless they are passed explicitly or ``use_calibration=False``.
        """
        loaded = load_model(model_id, use_calibration=use_calibration)
        model, calib = loaded.model, loaded.calibration
        cfg = DataConfig.from_processor(loaded.processor)
        if calib:
            temperature = calib.get("temperature", 1.0) if temperature is None else temperature
            unknown_threshold = calib.get("unknown_threshold") if unknown_threshold is None else unknown_threshold
        pred = cls(model, cfg, temperature=1.0 if temperature is None else temperature,
                   unknown_threshold=unknown_threshold, **kwargs)
        pred.calibration = calib
        pred.provenance = loaded.provenance
        return pred

    # -- core ---------------------------------------------------------------------------------
    def preprocess(self, images: Sequence[Image.Image | np.ndarray | torch.Tensor] | torch.Tensor) -> torch.Tensor:
        """Images -> pixel_values; same-size images go through the resize as one uint8 batch (same maths, one call)."""
        if not isinstance(images, torch.Tensor) and len(images) > 1:
            tensors = [to_uint8_tensor(im) for im in images]
            if all(t.shape == tensors[0].shape and t.shape[0] == 3 for t in tensors):
                return eval_transform(torch.stack(tensors), self.data_config)
        return eval_transform(images, self.data_config)

    @torch.inference_mode()
    def logits(self, pixel_values: torch.Tensor) -> torch.Tensor:
        """Raw (uncalibrated) float32 logits for preprocessed pixel values, in batches."""
        outs = []
        fmt = torch.channels_last if self.channels_last else torch.contiguous_format
        for chunk in pixel_values.split(self.batch_size):
            chunk = chunk.to(self.device).contiguous(memory_format=fmt)
            with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.bf16):
                outs.append(self.model(pixel_values=chunk).logits.float().cpu())
        return torch.cat(outs, dim=0) if outs else torch.zeros(0, len(self.labels))

    def probabilities(self, logits: torch.Tensor) -> np.ndarray:
        """Calibrated probabilities: softmax(logits / temperature)."""
        return softmax(logits, self.temperature)

    def iter_probabilities(self, images: Iterable[Any]) -> Iterator[np.ndarray]:
        """Yield (n, C) calibrated probability arrays batch by batch (streams; memory bounded by batch)."""
        batch: list[Any] = []
        for im in images:
            batch.append(im if isinstance(im, (torch.Tensor, np.ndarray, Image.Image)) else load_image(im))
            if len(batch) == self.batch_size:
                yield self._proba(batch)
                batch = []
        if batch:
            yield self._proba(batch)

    def _proba(self, batch: Sequence[Any] | torch.Tensor) -> np.ndarray:
        return self.probabilities(self.logits(self.preprocess(batch)))

    def predict_proba(self, images: Iterable[Any], tiles: bool = False) -> np.ndarray:
        """(N, C) probabilities for images (PIL, arrays, uint8 tensors or paths).

        ``tiles=True``: an image larger than the model input is not shrunk to it but cut into
        input-sized tiles at native scale (``mapping.tiles.TileGrid``, edge tiles shifted inwards, no
        padding); its answer is the tile probabilities averaged, weighted by the area each tile owns.
        An image no larger than the input is predicted whole, as without ``tiles``.
        """
        if tiles:
            rows = [self.tiled_proba(im if isinstance(im, (torch.Tensor, np.ndarray, Image.Image)) else load_image(im))
                    for im in images]
            return np.stack(rows) if rows else np.zeros((0, len(self.labels)), np.float32)
        parts = list(self.iter_probabilities(images))
        return np.concatenate(parts, axis=0) if parts else np.zeros((0, len(self.labels)), np.float32)

    def tiled_proba(self, image: Image.Image | np.ndarray | torch.Tensor) -> np.ndarray:
        """(C,) probabilities of one image from input-sized tiles at native scale (see ``predict_proba``)."""
        from .mapping.tiles import TileGrid

        t = to_uint8_tensor(image)
        h, w = t.shape[-2:]
        side = max(self.data_config.crop)
        if h <= side or w <= side:
            return self._proba([t])[0]
        grid = TileGrid.build(w, h, side)
        boxes = grid.boxes()
        owned = grid.owned_boxes()
        weights = (owned[:, 2] - owned[:, 0]) * (owned[:, 3] - owned[:, 1]) / float(w * h)
        probs = np.concatenate([
            self.probabilities(self.logits(self.preprocess(torch.stack([t[:, y0:y1, x0:x1] for x0, y0, x1, y1 in chunk]))))
            for chunk in np.array_split(boxes, max(1, -(-len(boxes) // self.batch_size)))
        ])
        return (probs * weights[:, None]).sum(0).astype(np.float32)

    def decide(self, probs: np.ndarray, top_k: int = 3, unknown_threshold: float | None = None) -> list[Prediction]:
        """Turn probability rows into labelled predictions, applying the unknown threshold: this call's
        ``unknown_threshold`` (a Space request's) or, when None, the predictor's own."""
        threshold = self.unknown_threshold if unknown_threshold is None else unknown_threshold
        out = []
        k = max(1, min(top_k, probs.shape[1]))
        for row in probs:
            order = np.argsort(-row)[:k]
            top = [{"label": self.labels[i], "score": float(row[i])} for i in order]
            best = float(row[order[0]])
            label = self.labels[order[0]]
            if threshold is not None and best < threshold:
                label = UNKNOWN
            out.append(Prediction(label=label, score=best, top_k=top))
        return out

    def predict(self, images: Iterable[Any], top_k: int = 3, tiles: bool = False) -> list[Prediction]:
        return self.decide(self.predict_proba(images, tiles=tiles), top_k=top_k)


# -- CLI ------------------------------------------------------------------------------------------
def expand_paths(paths: Iterable[str | os.PathLike]) -> list[Path]:
    """Files as given; folders expanded (recursively) to the image files inside, sorted (see ``inputs.scan_paths``)."""
    return scan_paths(paths).files


def _load_or_error(path: Path) -> Image.Image | str:
    notes: list[str] = []
    try:
        image = load_image(path, notes=notes)
    except ImageLoadError as exc:
        return exc.reason
    for note in notes:
        print(f"hf-minerals predict: note: {path}: {note}", file=sys.stderr)
    return image


def predict_files(
    predictor: Predictor, paths: Sequence[Path], top_k: int = 3, progress: bool = True, tiles: bool = False
) -> Iterator[dict[str, Any]]:
    """One CSV row per path, in order; unreadable files give a row with ``error`` set (never a crash).

    Images of the next batch are decoded on a thread while the model runs on the current one.
    """
    from tqdm.auto import tqdm

    chunks = [paths[i : i + predictor.batch_size] for i in range(0, len(paths), predictor.batch_size)]
    bar = tqdm(total=len(paths), unit="img", desc="predict", disable=not progress)
    with ThreadPoolExecutor(max_workers=2) as pool:
        pending = pool.map(_load_or_error, chunks[0]) if chunks else None
        for i, chunk in enumerate(chunks):
            loaded = list(pending)
            pending = pool.map(_load_or_error, chunks[i + 1]) if i + 1 < len(chunks) else None
            good = [im for im in loaded if not isinstance(im, str)]
            preds = iter(predictor.predict(good, top_k=top_k, tiles=tiles) if good else [])
            for path, im in zip(chunk, loaded):
                row: dict[str, Any] = {"path": str(path), "label": "", "score": "", "error": ""}
                if isinstance(im, str):
                    row["error"] = im
                    print(f"hf-minerals predict: skipped {path}: {im}", file=sys.stderr)
                else:
                    p = next(preds)
                    row.update(label=p.label, score=f"{p.score:.6f}")
                    for j, t in enumerate(p.top_k, 1):
                        row[f"top{j}_label"], row[f"top{j}_score"] = t["label"], f"{t['score']:.6f}"
                yield row
            bar.update(len(chunk))
    bar.close()


@dataclass
class PredictArguments:
    """``hf-minerals predict``: classify photomicrographs into a CSV of top-k minerals."""

    images: list[str] = field(metadata={"help": "image files or folders (searched recursively)"})
    model: str = field(metadata={"help": "model folder or Hub id"})
    top_k: int = 3
    output_file: str | None = field(
        default=None, metadata={"help": "CSV path, arguments beside it in <CSV>.args.yaml (default: CSV to stdout)"}
    )
    batch_size: int = 32
    threads: int | None = field(default=None, metadata={"help": "torch CPU threads (default: torch's choice)"})
    bf16: bool = field(default=False, metadata={"help": "bf16 autocast (faster on AMX/AVX512-bf16 CPUs)"})
    unknown_threshold: float | None = field(
        default=None, metadata={"help": "answer 'unknown' below this top probability (default: calibration.json, else off)"}
    )
    tiles: bool = field(
        default=False,
        metadata={"help": "large photos: average input-sized tiles at native scale instead of shrinking the photo"},
    )
    no_progress: bool = False


def main(argv: list[str] | None = None) -> int:
    from .cli_args import args_file_for, parse_command_line, save_args

    (args,) = parse_command_line([PredictArguments], argv, prog="hf-minerals predict")
    scan = scan_paths(args.images)
    if not scan.files and not scan.skipped:
        sys.exit("hf-minerals predict: error: no image files found in --images")
    predictor = Predictor.from_pretrained(args.model, batch_size=args.batch_size, num_threads=args.threads,
                                          bf16=args.bf16, unknown_threshold=args.unknown_threshold)
    k = max(1, min(args.top_k, len(predictor.labels)))
    fields = ["path", "label", "score"] + [f"top{j}_{s}" for j in range(1, k + 1) for s in ("label", "score")] + ["error"]
    if args.output_file:
        save_args(args_file_for(args.output_file), args, command="hf-minerals predict")
    out = open(args.output_file, "w", newline="") if args.output_file else sys.stdout  # noqa: SIM115
    n_bad = len(scan.skipped)
    try:
        writer = csv.DictWriter(out, fieldnames=fields, restval="")
        writer.writeheader()
        for path, reason in scan.skipped:  # every path left out is listed, with its reason
            print(f"hf-minerals predict: skipped {path}: {reason}", file=sys.stderr)
            writer.writerow({"path": path, "error": reason})
        for row in predict_files(predictor, scan.files, top_k=k, progress=not args.no_progress, tiles=args.tiles):
            n_bad += bool(row["error"])
            writer.writerow(row)
    finally:
        if args.output_file:
            out.close()
    where = args.output_file or "stdout"
    n_ok = len(scan.files) + len(scan.skipped) - n_bad
    print(f"hf-minerals predict: {n_ok} classified, {n_bad} unreadable -> {where}", file=sys.stderr)
    if n_ok == 0:
        print("hf-minerals predict: error: no image could be read (reasons above)", file=sys.stderr)
        return 1
    return 0
