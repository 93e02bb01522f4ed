"""The one predictor: CLI, Space, mapper, evaluator, explainer and benchmarks all classify through it.

Batched, ``torch.inference_mode``, preprocessing on tensors via ``preprocessing.eval_transform``.
Options measured in ``scripts/benchmark.py predict`` (see docs/mapping.md): bf16 weights (on by default
only where the CPU runs bf16 natively AND the model's own check - ``hf-minerals calibrate`` records the
bf16-vs-fp32 top-1 agreement on held-out data in calibration.json - reached 99.5 %; otherwise fp32, said
once), channels_last for conv nets, JPEG photos decoded at reduced scale (Pillow ``draft``) when the model
input is at least 2x smaller, and decoding on worker threads while the model runs. The forward pass runs in
torch or, with ``backend="onnx"`` / ``"auto"``, in ONNX Runtime from ``<model>/onnx/model.onnx``
(``hf_minerals.onnx_backend``: same preprocessing, photo views, calibration, open-set score and decisions).

CLI: ``hf-minerals predict --images IMAGES... --model DIR_OR_ID [--top_k 3] [--output_file preds.csv]``.
"""

from __future__ import annotations

import copy
import csv
import itertools
import os
import sys
import warnings
from collections import deque
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from .imageio import ImageLoadError, load_image
from .inputs import scan_paths
from .model_loader import CALIBRATION_FILE, load_model, read_calibration
from .openset import OODScorer, capture_features, find_scorer
from .preprocessing import DataConfig, eval_transform, to_uint8_tensor

UNKNOWN = "unknown"
__all__ = ["CALIBRATION_FILE", "PHOTO_VIEWS_ATTR", "Prediction", "Predictor", "bf16_supported", "default_bf16",
           "read_calibration"]
#: model-config attribute set by training with photo views (``AugmentConfig.photo_view`` > 0)
PHOTO_VIEWS_ATTR = "hf_minerals_photo_views"
#: bf16 goes on by default only when the model's recorded bf16-vs-fp32 top-1 agreement reaches this.
BF16_MIN_AGREEMENT = 0.995
_SAID: set[str] = set()
#: ``--backend`` help, shared by predict / map / evaluate
BACKEND_HELP = ("forward pass: torch, onnx (MODEL/onnx/model.onnx from `hf-minerals export`) or auto (onnx when the "
                "export's check on held-out images agreed >= 99.5%% with torch and the run is fp32 - bf16 by --bf16 or its default - else torch)")
#: model_type values of transformer backbones (channels_last does nothing useful for them).
_NON_CONV = ("swin", "vit", "deit", "beit", "dinov2", "convnextv2_", "swinv2")


@dataclass
class Prediction:
    """Top-k answer for one image; ``label`` is ``unknown`` when the top score is under the threshold
    or the open-set score (``ood_score``, see ``hf_minerals.openset``) is over its threshold."""

    label: str
    score: float
    top_k: list[dict[str, float | str]]
    ood_score: float | None = None  # distance to the known minerals' features; inf: featureless or noise
    unknown_reason: str = ""  # why the answer is unknown: "low confidence", "not like a known mineral", ...


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


def default_bf16(calibration: dict[str, Any] | None) -> tuple[bool, str]:
    """(bf16 on?, why): on only with native bf16 and a recorded bf16 top-1 agreement >= 99.5 %."""
    if not bf16_supported():
        return False, "this CPU has no native bf16"
    agree = (calibration or {}).get("bf16_top1_agreement")
    if agree is None:
        return False, "no bf16 agreement check recorded for this model: run `hf-minerals calibrate`"
    if agree < BF16_MIN_AGREEMENT:
        return False, f"bf16 agreed with fp32 on only {agree:.1%} of held-out images (< {BF16_MIN_AGREEMENT:.1%})"
    return True, f"native bf16, {agree:.1%} top-1 agreement with fp32 on held-out images"


_ENVELOPE_NOTE = ("a photo lies outside the exposure / lamp-colour range of the training photos: answered from its "
                  "photo-normalised view alone (docs/training.md, 'Photo views')")


class Predictor:
    """Wraps a classifier + its data config for batched inference."""

    #: whole-photo options (see ``__init__``); class defaults so subclasses with their own ``__init__`` have them
    reflectance: Any = None
    photo_views: bool = False
    photo_reference: np.ndarray | None = None
    imaging_envelope: Any = None
    outside_envelope: int = 0

    def __init__(
        self,
        model: torch.nn.Module | None,
        data_config: DataConfig,
        *,
        batch_size: int = 32,
        num_threads: int | None = None,
        temperature: float = 1.0,
        unknown_threshold: float | None = None,
        ood: OODScorer | None = None,
        ood_threshold: float | None = None,
        bf16: bool = False,
        channels_last: bool | None = None,
        device: str | torch.device = "cpu",
        reflectance: Any = None,
        photo_views: bool = False,
        onnx: Any = None,
        config: Any = None,
    ) -> None:
        """``onnx``: an ``onnx_backend.OnnxModel`` that runs the forward pass instead of ``model`` (fp32 only);
        ``model`` may then be None (an exported folder alone), with ``config`` giving the labels."""
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        if temperature <= 0:
            raise ValueError(f"temperature must be > 0, got {temperature}")
        if model is None and (onnx is None or config is None):
            raise ValueError("a Predictor needs a torch model, or an ONNX model and its config")
        if onnx is not None and bf16:
            raise ValueError("the ONNX backend runs fp32: bf16 needs backend='torch'")
        if onnx is not None and ood is not None and ood.needs_features and not onnx.has_features:
            raise ValueError(f"open-set method {ood.method!r} reads pooled features but {onnx.path} does not export "
                             "them: re-export with `hf-minerals export`, or use backend='torch'")
        self.device = torch.device(device)
        self.onnx = onnx  # ONNX Runtime forward pass (``onnx_backend``); None: torch
        self.model = model.eval().to(self.device) if model is not None else None
        self.data_config = data_config
        self.batch_size = batch_size
        self.temperature = float(temperature)
        self.unknown_threshold = unknown_threshold
        self.ood = ood  # open-set scorer (openset.safetensors); None: confidence threshold only
        self.ood_threshold = ood_threshold if ood is not None else None
        #: the mapper's threshold for section tiles (partial grains, mixed phases score higher than whole
        #: scenes); None: tiles use ``ood_threshold``. Read from calibration.json's ``ood.tile_threshold``.
        self.ood_tile_threshold: float | None = None
        self.bf16 = bool(bf16)
        self.calibration: dict[str, Any] | None = None  # what calibration.json held, if read
        self.provenance: dict[str, Any] = {}  # where the model came from (``loading.load_model``)
        #: ``reflectance.ReflectanceCalibration``: raw photos -> reflectance images before preprocessing
        #: (for models trained on calibrated images); None feeds the pixels as they are
        self.reflectance = reflectance
        #: also classify each photo's photo-normalised view (``colour.py``) and average the two answers;
        #: for models trained with ``AugmentConfig.photo_view`` > 0. ``photo_reference`` pins the white
        #: reference (the mapper sets it to the whole section's, so every tile is normalised alike).
        self.photo_views = bool(photo_views)
        self.photo_reference: np.ndarray | None = None
        #: ``colour.ImagingEnvelope`` of the training photos (calibration.json): photos outside it are answered
        #: from the normalised view alone (the raw view would extrapolate); None: both views always averaged
        self.imaging_envelope: Any = None
        #: how many photos the last ``view_scores`` call answered from the normalised view alone
        self.outside_envelope = 0
        if self.bf16 and self.device.type == "cpu" and not bf16_supported():
            warnings.warn("bf16 requested but this CPU has no native bf16: it will be emulated (slow)", stacklevel=2)
        cfg = model.config if model is not None else config
        is_conv = not str(getattr(cfg, "model_type", "")).startswith(_NON_CONV)
        self.channels_last = onnx is None and (is_conv if channels_last is None else bool(channels_last))
        if self.channels_last:
            self.model = self.model.to(memory_format=torch.channels_last)
        # bf16: a bf16 copy of the weights runs the batches, as pipeline(dtype=bfloat16) does (autocast would
        # re-cast every weight on every call); ``self.model`` stays fp32 for the explainer's gradients.
        self._run_model = copy.deepcopy(self.model).to(torch.bfloat16) if self.bf16 else self.model
        if num_threads:
            torch.set_num_threads(num_threads)
        if self.device.type == "cpu":
            # Denormal floats (common in random-init and some fine-tuned conv nets) slow CPU convolutions
            # 10-100x; flushing them to zero changes outputs below 1e-38 only. Process-wide, like threads.
            torch.set_flush_denormal(True)
        self.id2label: dict[int, str] = {int(k): v for k, v in cfg.id2label.items()}
        self.labels: list[str] = [self.id2label[i] for i in range(len(self.id2label))]

    @property
    def backend(self) -> str:
        """What runs the forward pass, in words (for logs and benchmark records)."""
        if self.onnx is not None:
            return f"onnxruntime fp32 ({self.onnx.path.name})"
        return f"torch {'bf16' if self.bf16 else 'fp32'}"

    @classmethod
    def from_pretrained(
        cls,
        model_id: str | os.PathLike,
        *,
        temperature: float | None = None,
        unknown_threshold: float | None = None,
        ood_threshold: float | None = None,
        use_calibration: bool = True,
        photo_views: bool | None = None,
        bf16: bool | None = None,
        backend: str = "auto",
        **kwargs: Any,
    ) -> Predictor:
        """Load model + processor + calibration through the one loader (``hf_minerals.model_loader``).

        ``calibration.json`` (written by ``hf-minerals calibrate``) supplies temperature, unknown threshold
        and the open-set score (``openset.safetensors``) with its threshold, unless they are passed
        explicitly or ``use_calibration=False``. ``bf16=None``: see :func:`default_bf16`. ``backend``:
        ``torch``, ``onnx`` (``<model>/onnx/model.onnx``) or ``auto`` (ONNX where its export passed the held-out
        agreement check and the run is fp32; see ``hf_minerals.onnx_backend``).
        """
        from . import onnx_backend as ob

        loaded = load_model(model_id)  # calibration read even when unused: it holds the bf16 check
        model, calib = loaded.model, loaded.calibration
        cfg = DataConfig.from_processor(loaded.processor)
        if backend == "onnx" and bf16:
            raise ValueError("the ONNX backend runs fp32: bf16 needs --backend torch")
        if bf16 is None and backend != "onnx":
            bf16, bf16_why = default_bf16(calib)
            _say(f"{'bf16' if bf16 else 'fp32'} inference ({bf16_why})")
        local = Path(loaded.provenance["path"]) if loaded.provenance.get("path") else None
        # bf16 (where on) comes first: on a native-bf16 CPU it is the faster path for large models (measured:
        # Swin-T 2048x1536 photos, torch bf16 1.4x ONNX fp32); ONNX is the fast fp32 path
        chosen, why = ob.choose_backend(local, backend, bool(bf16))
        onnx = None
        if chosen == "onnx":
            if local is None:
                raise ValueError(f"backend 'onnx' needs a local model folder holding {ob.ONNX_DIR}/{ob.ONNX_FILE}")
            onnx = ob.OnnxModel(local / ob.ONNX_DIR / ob.ONNX_FILE, kwargs.get("num_threads"))
            if backend == "onnx":  # asked for: used, but an export without a passing check is said
                ok, verdict = ob.agreement_verdict(ob.read_record(local / ob.ONNX_DIR))
                why = verdict if ok else f"used as asked, but {verdict}"
            bf16 = False
        if backend != "torch":
            _say(f"{chosen} backend ({why})")
        config = model.config
        calib = calib if use_calibration else None
        opts = calibrated_options(model_id, calib, config, temperature, unknown_threshold, ood_threshold, photo_views)
        tile_threshold, envelope = opts.pop("ood_tile_threshold"), opts.pop("imaging_envelope")
        pred = cls(model, cfg, bf16=bool(bf16), onnx=onnx, **opts, **kwargs)
        pred.ood_tile_threshold = tile_threshold
        if envelope is not None:
            pred.imaging_envelope = envelope
        pred.calibration = calib
        pred.provenance = {**loaded.provenance, "backend": pred.backend}
        return pred

    # -- core ---------------------------------------------------------------------------------
    @property
    def decode_side(self) -> int:
        """Smallest image side preprocessing needs: JPEGs may be decoded down to it (``imageio`` draft)."""
        return max(*self.data_config.crop, self.data_config.resize_shortest or 0)

    def load(self, source: Any) -> Image.Image:
        """Decode one image file (reduced-scale JPEG decoding when the model input is >= 2x smaller)."""
        return load_image(source, min_decode_side=self.decode_side)

    def decoded(self, images: Iterable[Any], workers: int = 2) -> Iterator[Any]:
        """Images in order; paths/bytes decoded on ``workers`` threads up to two batches ahead of the model
        (Pillow releases the GIL while decoding). Each file is decoded once."""
        window: deque = deque()
        with ThreadPoolExecutor(max_workers=workers) as pool:
            for im in images:
                ready = isinstance(im, (torch.Tensor, np.ndarray, Image.Image))
                window.append(im if ready else pool.submit(self.load, im))
                if len(window) > 2 * self.batch_size:
                    head = window.popleft()
                    yield head.result() if isinstance(head, Future) else head
            while window:
                head = window.popleft()
                yield head.result() if isinstance(head, Future) else head

    def preprocess(self, images: Sequence[Image.Image | np.ndarray | torch.Tensor] | torch.Tensor) -> torch.Tensor:
        """Images -> pixel_values; same-size images go through the resize as one uint8 batch (same maths, one call).
        Geometry and normalisation only: reflectance and photo views act on whole photos (``view_scores``)."""
        if not isinstance(images, torch.Tensor) and len(images) > 1:
            tensors = [to_uint8_tensor(im) for im in images]
            if all(t.shape == tensors[0].shape and t.shape[0] == 3 for t in tensors):
                return eval_transform(torch.stack(tensors), self.data_config)
        return eval_transform(images, self.data_config)

    def to_reflectance(self, images: Sequence[Any] | torch.Tensor) -> list[np.ndarray]:
        """Whole photos -> 8-bit reflectance images (dark/white frames resized to each photo)."""
        out = []
        for im in images:
            arr = im.permute(1, 2, 0).numpy() if isinstance(im, torch.Tensor) else np.asarray(
                im.convert("RGB") if isinstance(im, Image.Image) else im)
            out.append(self.reflectance.to_image(arr))
        return out

    @torch.inference_mode()
    def forward(self, pixel_values: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Raw logits and pooled features (the classifier head's input; what the open-set score reads)."""
        if self.onnx is not None:
            parts = [self.onnx.run(c, features=True) for c in pixel_values.split(self.batch_size)]
            feats = [f for _, f in parts if f is not None]
            logits = torch.cat([lg for lg, _ in parts]) if parts else torch.zeros(0, len(self.labels))
            return logits, torch.cat(feats) if feats else torch.zeros(0, 0)
        with capture_features(self._run_model) as feats:
            logits = self.logits(pixel_values)
        return logits, torch.cat(feats) if feats else torch.zeros(0, 0)

    def ood_scores(self, pixel_values: torch.Tensor, features: torch.Tensor) -> np.ndarray | None:
        """Open-set score per image (higher = less like the known minerals), or None without a scorer."""
        if self.ood is None:
            return None
        return self.ood.score(features, pixel_values, self.data_config.mean, self.data_config.std)

    @torch.inference_mode()
    def logits(self, pixel_values: torch.Tensor) -> torch.Tensor:
        """Raw (uncalibrated) float32 logits for preprocessed pixel values, in batches."""
        outs = []
        fmt = torch.channels_last if self.channels_last else torch.contiguous_format
        for chunk in pixel_values.split(self.batch_size):
            if self.onnx is not None:
                outs.append(self.onnx.run(chunk)[0])
                continue
            chunk = chunk.to(self.device, torch.bfloat16 if self.bf16 else torch.float32).contiguous(memory_format=fmt)
            outs.append(self._run_model(pixel_values=chunk).logits.float().cpu())
        return torch.cat(outs, dim=0) if outs else torch.zeros(0, len(self.labels))

    def probabilities(self, logits: torch.Tensor) -> np.ndarray:
        """Calibrated probabilities: softmax(logits / temperature)."""
        return softmax(logits, self.temperature)

    def iter_scores(self, images: Iterable[Any]) -> Iterator[tuple[np.ndarray, np.ndarray | None]]:
        """Yield ((n, C) calibrated probabilities, (n,) open-set scores or None) batch by batch (streams)."""
        batch: list[Any] = []
        for im in self.decoded(images):
            batch.append(im)
            if len(batch) == self.batch_size:
                yield self._scores(batch)
                batch = []
        if batch:
            yield self._scores(batch)

    def iter_probabilities(self, images: Iterable[Any]) -> Iterator[np.ndarray]:
        """Yield (n, C) calibrated probability arrays batch by batch (streams; memory bounded by batch)."""
        for probs, _ in self.iter_scores(images):
            yield probs

    def view_scores(self, batch: Sequence[Any] | torch.Tensor) -> tuple[torch.Tensor, np.ndarray | None]:
        """Raw logits and open-set scores (None without a scorer) of a batch of whole photos. With
        ``photo_views`` the logits are averaged with those of each photo's photo-normalised view (its own
        white reference, or ``photo_reference``), except for photos outside ``imaging_envelope`` (lamp colour
        or exposure the model never saw): those take the normalised view's logits alone. The open-set score
        reads the raw view."""
        photos = self.to_reflectance(batch) if self.reflectance is not None else batch
        pixel_values = self.preprocess(photos)
        if self.ood is None:
            logits, ood = self.logits(pixel_values), None
        else:
            logits, features = self.forward(pixel_values)
            ood = self.ood_scores(pixel_values, features)
        if not self.photo_views:
            return logits, ood
        from .colour import normalised_view, photo_reference

        refs = [self.photo_reference if self.photo_reference is not None else photo_reference(p) for p in photos]
        normalised = self.logits(self.preprocess([normalised_view(p, r) for p, r in zip(photos, refs)]))
        return self.combine_views(logits, normalised, np.stack(refs) if refs else np.zeros((0, 3))), ood

    def combine_views(self, raw: torch.Tensor, normalised: torch.Tensor, references: np.ndarray) -> torch.Tensor:
        """The photo-views answer: the mean of the raw and normalised views' logits, or the normalised view's
        alone for photos whose white reference (one per row, or one (3,) for all) lies outside
        ``imaging_envelope``. The one place both the Predictor and the mapper combine views."""
        from .colour import combine_views

        self.outside_envelope = 0
        if self.imaging_envelope is None or len(raw) == 0:
            return combine_views(raw, normalised)
        outside = self.imaging_envelope.outside(np.broadcast_to(np.asarray(references, np.float32).reshape(-1, 3), (len(raw), 3)))
        self.outside_envelope = int(outside.sum())
        if self.outside_envelope and _ENVELOPE_NOTE not in _SAID:
            _SAID.add(_ENVELOPE_NOTE)
            print(f"hf-minerals: {_ENVELOPE_NOTE}", file=sys.stderr)
        return combine_views(raw, normalised, outside)

    def view_logits(self, batch: Sequence[Any] | torch.Tensor) -> torch.Tensor:
        return self.view_scores(batch)[0]

    def _scores(self, batch: Sequence[Any] | torch.Tensor) -> tuple[np.ndarray, np.ndarray | None]:
        logits, ood = self.view_scores(batch)
        return self.probabilities(logits), ood

    def predict_scores(self, images: Iterable[Any], tiles: bool = False) -> tuple[np.ndarray, np.ndarray | None]:
        """(N, C) probabilities and (N,) open-set scores (None without a scorer) for images or paths.

        ``tiles=True``: see ``predict_proba``; an image's open-set score is then the area-weighted median of
        its tiles' scores (a few blank resin tiles do not make a whole photomicrograph "unknown").
        """
        if tiles:
            rows = [self.tiled_scores(im if isinstance(im, (torch.Tensor, np.ndarray, Image.Image)) else load_image(im))
                    for im in images]
            probs = np.stack([p for p, _ in rows]) if rows else np.zeros((0, len(self.labels)), np.float32)
            ood = np.array([o for _, o in rows], dtype=np.float64) if rows and self.ood is not None else None
            return probs, ood
        parts = list(self.iter_scores(images))
        probs = np.concatenate([p for p, _ in parts]) if parts else np.zeros((0, len(self.labels)), np.float32)
        ood = np.concatenate([o for _, o in parts]) if parts and self.ood is not None else None
        return probs, ood

    def predict_proba(self, images: Iterable[Any], tiles: bool = False) -> np.ndarray:
        """(N, C) probabilities for images (PIL, arrays, uint8 tensors or paths).

        ``tiles=True``: an image larger than the model input is not shrunk to it but cut into
        input-sized tiles at native scale (``mapping.tiles.TileGrid``, edge tiles shifted inwards, no
        padding); its answer is the tile probabilities averaged, weighted by the area each tile owns.
        An image no larger than the input is predicted whole, as without ``tiles``.
        """
        if tiles:
            return self.predict_scores(images, tiles=True)[0]
        parts = list(self.iter_probabilities(images))
        return np.concatenate(parts, axis=0) if parts else np.zeros((0, len(self.labels)), np.float32)

    def tiled_scores(self, image: Image.Image | np.ndarray | torch.Tensor) -> tuple[np.ndarray, float | None]:
        """(C,) probabilities and the open-set score of one image from input-sized tiles at native scale."""
        from .mapping.tiles import TileGrid

        t = to_uint8_tensor(image)
        h, w = t.shape[-2:]
        side = max(self.data_config.crop)
        if h <= side or w <= side:
            probs, ood = self._scores([t])
            return probs[0], None if ood is None else float(ood[0])
        grid = TileGrid.build(w, h, side)
        owned = grid.owned_boxes()
        weights = (owned[:, 2] - owned[:, 0]) * (owned[:, 3] - owned[:, 1]) / float(w * h)
        chunks = np.array_split(grid.boxes(), max(1, -(-len(grid) // self.batch_size)))
        pinned = self.photo_reference
        if self.photo_views and pinned is None:  # photo views of tiles use the whole photo's white reference
            from .colour import photo_reference

            self.photo_reference = photo_reference(t.permute(1, 2, 0).numpy())
        try:
            parts = [self._scores(torch.stack([t[:, y0:y1, x0:x1] for x0, y0, x1, y1 in chunk])) for chunk in chunks]
        finally:
            self.photo_reference = pinned
        probs = (np.concatenate([p for p, _ in parts]) * weights[:, None]).sum(0).astype(np.float32)
        if self.ood is None:
            return probs, None
        scores = np.concatenate([o for _, o in parts])
        order = np.argsort(scores, kind="stable")
        median = scores[order][np.searchsorted(np.cumsum(weights[order]), 0.5)]
        return probs, float(median)

    def unknown_reason(self, best: float, ood_score: float | None, unknown_threshold: float | None = None) -> str:
        """Why a row is answered ``unknown`` ('' when it is not): open-set score first, then confidence
        (``unknown_threshold``, else the predictor's own)."""
        if ood_score is not None and self.ood_threshold is not None and ood_score > self.ood_threshold:
            return "featureless or noise-like image" if np.isinf(ood_score) else "not like a known mineral"
        threshold = self.unknown_threshold if unknown_threshold is None else unknown_threshold
        if threshold is not None and best < threshold:
            return "low confidence"
        return ""

    def decide(self, probs: np.ndarray, top_k: int = 3, unknown_threshold: float | None = None,
               ood_scores: np.ndarray | None = None) -> list[Prediction]:
        """Turn probability rows (and open-set scores) into labelled predictions, applying both thresholds:
        the confidence one is this call's ``unknown_threshold`` (a Space request's) or, when None, the
        predictor's own; without ``ood_scores`` only the confidence rule applies."""
        out = []
        k = max(1, min(top_k, probs.shape[1]))
        for i, row in enumerate(probs):
            order = np.argsort(-row)[:k]
            top = [{"label": self.labels[j], "score": float(row[j])} for j in order]
            best = float(row[order[0]])
            ood = None if ood_scores is None else float(ood_scores[i])
            reason = self.unknown_reason(best, ood, unknown_threshold)
            label = UNKNOWN if reason else self.labels[order[0]]
            out.append(Prediction(label=label, score=best, top_k=top, ood_score=ood, unknown_reason=reason))
        return out

    def predict(self, images: Iterable[Any], top_k: int = 3, tiles: bool = False) -> list[Prediction]:
        probs, ood = self.predict_scores(images, tiles=tiles)
        return self.decide(probs, top_k=top_k, ood_scores=ood)


def _say(line: str) -> None:
    """Print a choice made for the user once per process (not once per Predictor)."""
    if line not in _SAID:
        _SAID.add(line)
        print(f"hf-minerals: {line}", file=sys.stderr)


def calibrated_options(model_id: str | os.PathLike, calib: dict[str, Any] | None, config: Any,
                       temperature: float | None, unknown_threshold: float | None, ood_threshold: float | None,
                       photo_views: bool | None) -> dict[str, Any]:
    """Predictor options from ``calibration.json`` (values passed explicitly win) and the model config: the
    one reading for a model folder and for an exported ONNX folder (which carries the same files)."""
    if calib:
        temperature = calib.get("temperature", 1.0) if temperature is None else temperature
        unknown_threshold = calib.get("unknown_threshold") if unknown_threshold is None else unknown_threshold
    if photo_views is None:  # the model says whether it was trained on photo-normalised views too
        photo_views = bool(getattr(config, PHOTO_VIEWS_ATTR, False))
    ood = find_scorer(model_id, calib)
    envelope = None
    if calib and photo_views and calib.get("imaging_envelope"):
        from .colour import ImagingEnvelope

        envelope = ImagingEnvelope.from_dict(calib["imaging_envelope"])
    return {"temperature": 1.0 if temperature is None else temperature, "unknown_threshold": unknown_threshold,
            "imaging_envelope": envelope,
            "ood": ood, "photo_views": photo_views,
            "ood_threshold": (calib["ood"]["threshold"] if ood_threshold is None else ood_threshold)
            if ood is not None else None,
            # an explicit threshold holds for tiles too
            "ood_tile_threshold": calib["ood"].get("tile_threshold") if ood is not None and ood_threshold is None
            else None}


# -- CLI ------------------------------------------------------------------------------------------
def expand_paths(paths: Iterable[str | os.PathLike]) -> list[Path]:
    """Files as given; folders expanded (recursively) to the image files inside, sorted (see ``inputs.scan_paths``)."""
    return scan_paths(paths).files


def _load_or_error(path: Path, min_decode_side: int | None = None) -> Image.Image | str:
    notes: list[str] = []
    try:
        image = load_image(path, notes=notes, min_decode_side=min_decode_side)
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
    # tiles read the photo at native scale: no reduced-scale JPEG decoding then
    load = partial(_load_or_error, min_decode_side=None if tiles else predictor.decode_side)
    with ThreadPoolExecutor(max_workers=2) as pool:
        pending = pool.map(load, chunks[0]) if chunks else None
        for i, chunk in enumerate(chunks):
            loaded = list(pending)
            pending = pool.map(load, chunks[i + 1]) if i + 1 < len(chunks) else None
            good = [im for im in loaded if not isinstance(im, str)]
            preds = iter(predictor.predict(good, top_k=top_k, tiles=tiles) if good else [])
            for path, im in zip(chunk, loaded):
                row: dict[str, Any] = {"path": str(path), "label": "", "score": "", "ood_score": "", "error": ""}
                if isinstance(im, str):
                    row["error"] = im
                    print(f"hf-minerals predict: skipped {path}: {im}", file=sys.stderr)
                else:
                    p = next(preds)
                    row.update(label=p.label, score=f"{p.score:.6f}",
                               ood_score="" if p.ood_score is None else f"{p.ood_score:.4f}")
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
    bf16: bool | None = field(default=None, metadata={
        "help": "bf16 inference (default: on where the CPU runs bf16 natively and calibration.json records >= 99.5%% "
                "top-1 agreement with fp32; --bf16 false forces fp32)"})
    backend: str = field(default="auto", metadata={"help": BACKEND_HELP, "choices": ["auto", "torch", "onnx"]})
    unknown_threshold: float | None = field(
        default=None, metadata={"help": "answer 'unknown' below this top probability (default: calibration.json, else off)"}
    )
    ood_threshold: float | None = field(
        default=None, metadata={"help": "answer 'unknown' above this open-set score (default: calibration.json, else off)"}
    )
    tiles: bool = field(
        default=False,
        metadata={"help": "large photos: average input-sized tiles at native scale instead of shrinking the photo"},
    )
    no_progress: bool = False
    photo_views: bool | None = field(
        default=None, metadata={"help": "average with each photo's photo-normalised view (default: on for models trained so)"}
    )


def main(argv: list[str] | None = None) -> int:
    from . import reflectance
    from .cli_args import args_file_for, parse_command_line, save_args

    args, refl_args = parse_command_line([PredictArguments, reflectance.ReflectanceArguments], argv,
                                         prog="hf-minerals predict")
    try:
        refl = reflectance.from_args(refl_args)
    except (ValueError, ImageLoadError) as exc:
        sys.exit(f"hf-minerals predict: error: {exc}")
    scan = scan_paths(args.images)
    if not scan.files and not scan.skipped:
        sys.exit("hf-minerals predict: error: no image files found in --images")
    predictor = Predictor.from_pretrained(args.model, batch_size=args.batch_size, num_threads=args.threads,
                                          bf16=args.bf16, unknown_threshold=args.unknown_threshold, reflectance=refl,
                                          photo_views=args.photo_views, ood_threshold=args.ood_threshold,
                                          backend=args.backend)
    k = max(1, min(args.top_k, len(predictor.labels)))
    fields = ["path", "label", "score", "ood_score"] + [f"top{j}_{s}" for j in range(1, k + 1) for s in ("label", "score")] + ["error"]
    from . import distributed

    if distributed.is_distributed():  # accelerate launch: each process a share of whole batches, one merged CSV
        if not args.output_file:
            sys.exit("hf-minerals predict: error: with several processes give --output_file (the merged CSV)")
        if distributed.is_main():
            save_args(args_file_for(args.output_file), args, command="hf-minerals predict")
        mine, first = distributed.my_share(scan.files, group=predictor.batch_size)
        rows: Iterable[dict[str, Any]] = predict_files(predictor, mine, top_k=k, progress=not args.no_progress)
        if distributed.is_main():  # paths left out by the scan come first, as in one process
            rows = itertools.chain(({"path": p, "error": r} for p, r in scan.skipped), rows)
        distributed.write_csv_sharded(rows, fields, args.output_file)
        print(f"hf-minerals predict: process {distributed.state().process_index} classified images "
              f"{first}-{first + len(mine) - 1} -> {args.output_file}", file=sys.stderr)
        return 0
    if args.output_file:
        save_args(args_file_for(args.output_file), args, refl_args, command="hf-minerals predict")
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
