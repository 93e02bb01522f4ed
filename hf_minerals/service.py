"""The Space's logic, free of UI code: load an upload safely, classify, explain, map a section.

``space/app.py`` is layout and wiring around a ``MineralService``; benchmarks, tests and notebooks use
the service directly. Nothing here imports Gradio: a request the user got wrong raises ``ServiceError``
(its message is meant for the user), which the app turns into ``gr.Error``.

Limits come from environment variables (see ``Limits``) and are documented in docs/space.md.
"""

from __future__ import annotations

import json
import os
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from . import explain as xai
from .fairlock import FairLock, LockedPredictor
from .imageio import ImageLoadError, load_image, mode_note
from .inputs import limits as input_limits
from .predict import UNKNOWN, Predictor

#: Written by ``hf_minerals.hub.publish_space`` so a published Space knows its model without a variable.
MODEL_ID_FILE = "model_id.txt"
QUICKSTART_MODEL = Path("outputs/quickstart/model")
#: Used when the model folder has no calibration.json (``hf-minerals calibrate`` writes one).
DEFAULT_UNKNOWN_THRESHOLD = 0.5
#: (label shown in the page, attribution method) for the methods the Space offers.
METHODS: list[tuple[str, str]] = [
    ("Grad-CAM (fast)", "gradcam"),
    ("Integrated gradients (slower)", "integrated_gradients"),
    ("Occlusion (slower)", "occlusion"),
]
METHOD_NAMES = {value: name for name, value in METHODS}
MIN_TILE, MAX_TILE = 112, 512  # whole-section tiles (px): bounds the number of tiles per request


class ServiceError(ValueError):
    """A request the service refuses; the message says what was wrong, in words for the user."""


class ModelNotFoundError(RuntimeError):
    """No model was configured and the quickstart model is not there."""


def _env_int(name: str, default: int) -> int:
    raw = os.environ.get(name, "").strip()
    try:
        return int(float(raw)) if raw else default
    except ValueError:
        raise SystemExit(f"environment variable {name}={raw!r} is not a number") from None


@dataclass(frozen=True)
class Limits:
    """What one request may cost; every bound can be set from the environment."""

    # the shared input policy (hf_minerals.inputs): the same limits and reasons as every command
    max_upload_mb: float = field(default_factory=lambda: input_limits().max_upload_mb)
    max_pixels: int = field(default_factory=lambda: input_limits().max_pixels)
    min_side: int = field(default_factory=lambda: input_limits().min_side)
    map_max_pixels: int = field(default_factory=lambda: _env_int("HF_MINERALS_MAP_MAX_PIXELS", 4096 * 4096))
    concurrency: int = field(default_factory=lambda: _env_int("HF_MINERALS_CONCURRENCY", 2))
    queue_size: int = field(default_factory=lambda: _env_int("HF_MINERALS_QUEUE_SIZE", 64))
    #: tiles per model call of a section map: a grain request waits behind at most one such call
    map_batch: int = field(default_factory=lambda: _env_int("HF_MINERALS_MAP_BATCH", 2))
    display_side: int = 768  # longest side of the overlay shown in the page


def resolve_model(model: str | os.PathLike | None = None, space_dir: str | os.PathLike | None = None) -> str:
    """The model to serve: argument > $HF_MINERALS_MODEL > ``space_dir``/model_id.txt > outputs/quickstart/model
    (in the working directory, or next to ``space_dir``)."""
    for candidate in (model, os.environ.get("HF_MINERALS_MODEL", "").strip() or None):
        if candidate:
            return str(candidate)
    roots = [Path.cwd()]
    if space_dir is not None:
        id_file = Path(space_dir) / MODEL_ID_FILE
        if id_file.is_file() and id_file.read_text().strip():
            return id_file.read_text().strip()
        roots.append(Path(space_dir).resolve().parent)
    for root in roots:
        if (root / QUICKSTART_MODEL / "config.json").is_file():
            return str(root / QUICKSTART_MODEL)
    raise ModelNotFoundError(
        "No model to serve. Set HF_MINERALS_MODEL to a Hub model id (e.g. your-name/hf-minerals-swin-tiny) "
        "or a local folder holding config.json + model.safetensors + preprocessor_config.json, "
        "or run `make quickstart` to train the offline default into outputs/quickstart/model."
    )


def upload_path(value: Any) -> str | None:
    """The local path of an uploaded image as a web UI hands it over (path, dict or an object with .path)."""
    if value is None:
        return None
    if isinstance(value, (str, os.PathLike)):
        return str(value)
    if isinstance(value, dict):
        value = value.get("path")
    else:
        value = getattr(value, "path", None)
    if value is None or value == "":
        return None
    if not isinstance(value, (str, os.PathLike)):  # {"path": 12345}: the caller's mistake, not ours
        raise ServiceError(f"Invalid file reference: 'path' must be a string, got {type(value).__name__}.")
    return str(value)


def unit_interval(value: Any, name: str, default: float) -> float:
    """A number in [0, 1] from a request (None = default), or a ServiceError that says what was wrong."""
    try:
        x = float(value) if value is not None else float(default)
    except (TypeError, ValueError):
        raise ServiceError(f"{name} must be a number in [0, 1], got {value!r}") from None
    if not 0.0 <= x <= 1.0:  # also refuses NaN
        raise ServiceError(f"{name} must be in [0, 1], got {x}")
    return x


def stamp(image: Image.Image, meta: dict[str, Any]) -> Image.Image:
    """Tag an output picture with what made it (PNG text chunk) and a request id. The id also keeps
    two identical outputs apart: Gradio caches by content hash and rewrites a same-hash file in place,
    which a concurrent download of that file can catch half-written."""
    image.info["hf-minerals"] = json.dumps({**meta, "request": uuid.uuid4().hex})
    return image


#: A lab's Space can classify in reflectance: its session's dark / white-standard frames (paths in the Space
#: repo) and the standard's reflectance (%, or SiC / WTiC ...) from these variables (docs/space.md).
REFLECTANCE_ENV = ("HF_MINERALS_DARK_FRAME", "HF_MINERALS_WHITE_FRAME", "HF_MINERALS_REFERENCE_REFLECTANCE")


def reflectance_from_env() -> Any:
    """The reflectance calibration the environment configures, or None; half-set variables are an error."""
    values = [os.environ.get(k) for k in REFLECTANCE_ENV]
    if not any(values):
        return None
    if not all(values):
        raise ServiceError(f"set all of {', '.join(REFLECTANCE_ENV)} or none")
    from .reflectance import ReflectanceCalibration, reference_value

    return ReflectanceCalibration.load(values[0], values[1], reference_value(values[2].split()))


class MineralService:
    """The Space's functions: load safely, classify, explain, map. Thread-safe: one model call at a time."""

    def __init__(self, predictor: Predictor, *, model_id: str = "", limits: Limits | None = None) -> None:
        self.predictor = predictor
        self.model_id = model_id
        self.limits = limits or Limits()
        self._explainers: dict[str, xai.Explainer] = {}
        self.default_threshold = (
            float(predictor.unknown_threshold) if predictor.unknown_threshold is not None else DEFAULT_UNKNOWN_THRESHOLD
        )
        self.calibrated = bool(getattr(predictor, "calibration", None))
        # Attribution hooks live on the shared model: one model call at a time inside it, first come first
        # served; a section map takes it per batch (LockedPredictor), so grain requests never wait for a map.
        self._model_lock = FairLock()
        self._plot_lock = threading.Lock()  # pyplot is not thread-safe

    @classmethod
    def from_pretrained(cls, model: str | os.PathLike | None = None, limits: Limits | None = None, *,
                        space_dir: str | os.PathLike | None = None) -> MineralService:
        model_id = resolve_model(model, space_dir)
        return cls(Predictor.from_pretrained(model_id, batch_size=16, reflectance=reflectance_from_env()),
                   model_id=model_id, limits=limits)

    def explainer(self, method: str) -> xai.Explainer:
        """One Explainer per attribution method, all sharing the predictor's model (built on first use)."""
        if method not in self._explainers:
            self._explainers[method] = xai.Explainer(self.predictor, method=method)
        return self._explainers[method]

    # -- input --------------------------------------------------------------------------------
    def load(self, upload: Any, *, max_pixels: int | None = None) -> tuple[Image.Image, str]:
        """The upload as 8-bit RGB through ``load_image`` (pixel and side bounds) and a note on its conversion."""
        path = upload_path(upload)
        if not path:
            raise ServiceError("No image: upload a photomicrograph (PNG, JPEG, TIFF or BMP) first.")
        notes: list[str] = []
        try:
            image = load_image(path, max_pixels=max_pixels or self.limits.max_pixels, min_side=self.limits.min_side,
                               max_bytes=int(self.limits.max_upload_mb * 2**20), notes=notes)
        except ImageLoadError as exc:
            raise ServiceError(f"Cannot use this file: {exc.reason}.") from None
        return image, " ".join([*notes, mode_note(path)]).strip()

    def _threshold(self, value: Any) -> float:
        return unit_interval(value, "unknown_threshold", self.default_threshold)

    def decide(self, probs: np.ndarray, threshold: float, ood_score: float | None = None) -> dict[str, Any]:
        """The answer for one probability row (and open-set score) at a per-request threshold (the shared
        predictor is not touched). ``ood_score`` is JSON-safe: None when absent or infinite (input checks)."""
        row = np.asarray(probs, dtype=np.float64)[None]
        scores = None if ood_score is None else np.array([ood_score], dtype=np.float64)
        p = self.predictor.decide(row, top_k=len(self.predictor.labels), unknown_threshold=threshold, ood_scores=scores)[0]
        finite = p.ood_score is not None and np.isfinite(p.ood_score)
        return {
            "label": p.label,
            "unknown": p.label == UNKNOWN,
            "unknown_reason": p.unknown_reason,
            "score": round(p.score, 6),
            "threshold": threshold,
            "ood_score": round(float(p.ood_score), 6) if finite else None,
            "ood_threshold": self.predictor.ood_threshold,
            "calibrated": self.calibrated,
            "probabilities": {d["label"]: round(float(d["score"]), 6) for d in p.top_k},
        }


    # -- endpoints ----------------------------------------------------------------------------
    def predict(self, upload: Any, unknown_threshold: float | None = None) -> dict[str, Any]:
        """Probabilities and the answer (``unknown`` below the threshold) for one image."""
        threshold = self._threshold(unknown_threshold)
        image, note = self.load(upload)
        t0 = time.perf_counter()
        with self._model_lock:
            probs, ood = self.predictor.predict_scores([image])
        out = self.decide(probs[0], threshold, None if ood is None else float(ood[0]))
        out.update(model=self.model_id, seconds=round(time.perf_counter() - t0, 3), note=note)
        return out

    def explain(self, upload: Any, method: str = "gradcam", opacity: float = 0.5,
                unknown_threshold: float | None = None) -> tuple[dict, Image.Image, str, dict, dict]:
        """Probabilities + attribution overlay in one pass; returns label, overlay, verdict, details, state."""
        if method not in METHOD_NAMES:
            raise ServiceError(f"method must be one of {sorted(METHOD_NAMES)}, got {method!r}")
        threshold = self._threshold(unknown_threshold)
        alpha = unit_interval(opacity, "opacity", 0.5)
        image, note = self.load(upload)
        options = xai.interactive_options(method, min(self.predictor.data_config.crop))
        t0 = time.perf_counter()
        with self._model_lock:
            result = self.explainer(method).explain([image], **options)
        ood = result.predictions[0].ood_score
        seconds = time.perf_counter() - t0
        heat, probs = np.asarray(result.maps[0], dtype=np.float32), np.asarray(result.probs[0])
        display = self._display(image, result.views[0])
        decision = self.decide(probs, threshold, ood)
        decision.update(method=method, model=self.model_id, seconds=round(seconds, 3), note=note)
        state = {"display": display, "heatmap": heat, "probs": probs, "ood": ood, "details": decision}
        overlay = stamp(xai.overlay(display, heat, alpha=alpha), {"kind": "attribution overlay", "method": method,
                                                                  "model": self.model_id})
        return decision["probabilities"], overlay, self.verdict(decision), decision, state

    def _display(self, image: Image.Image, view: np.ndarray) -> Image.Image:
        """The picture the map is drawn on: the whole image when the model sees all of it (resize
        only), else the model's centre-cropped view, so the map lines up with what it explains."""
        if self.predictor.data_config.resize_shortest is None:
            display = image.copy()
            display.thumbnail((self.limits.display_side, self.limits.display_side))
            return display
        return Image.fromarray(view)

    def reblend(self, state: dict | None, opacity: float) -> Image.Image | None:
        """New opacity, same map: no model call."""
        if not state:
            return None
        image = xai.overlay(state["display"], state["heatmap"], alpha=unit_interval(opacity, "opacity", 0.5))
        return stamp(image, {"kind": "attribution overlay", "method": state["details"].get("method")})

    def redecide(self, state: dict | None, unknown_threshold: float) -> tuple[str, dict]:
        """New threshold, same probabilities: no model call."""
        if not state:
            return "", {}
        decision = {**state["details"], **self.decide(state["probs"], self._threshold(unknown_threshold), state.get("ood"))}
        state["details"] = decision
        return self.verdict(decision), decision

    def verdict(self, d: dict[str, Any]) -> str:
        """The answer as Markdown: the mineral (or 'unknown' and why), the note on the input, the timing."""
        top_name, top_p = next(iter(d["probabilities"].items()))
        cal = "calibrated" if d.get("calibrated") else "uncalibrated"
        reason = d.get("unknown_reason", "low confidence" if d["unknown"] else "")
        if reason == "featureless or noise-like image":
            head = ("### Answer: **unknown — not a photomicrograph it can read**\nThe image is featureless (almost "
                    "no texture or colour variation) or noise-like, whatever the model's top guess "
                    f"({top_name}, {top_p:.0%}).")
        elif reason == "not like a known mineral":
            head = ("### Answer: **unknown — not a known mineral**\nThe image is unlike the "
                    f"{len(d['probabilities'])} minerals the model was trained on (open-set score "
                    f"{d['ood_score']:.3g} > {d['ood_threshold']:.3g}), whatever its top guess ({top_name}, {top_p:.0%}).")
        elif d["unknown"]:
            head = (f"### Answer: **unknown mineral**\nTop probability {top_p:.0%} ({top_name}) is below the "
                    f"unknown threshold {d['threshold']:.0%}: the model is not confident this is one of the "
                    f"{len(d['probabilities'])} minerals it knows.")
        else:
            head = f"### Answer: **{d['label']}** ({top_p:.0%}, {cal})"
        tail = f"\n\n{METHOD_NAMES.get(d.get('method', ''), '')} · {d.get('seconds', 0):.2f} s"
        return head + (f"\n\n_{d['note']}_" if d.get("note") else "") + tail

    def map_section(self, upload: Any, tile: int = 224,
                    unknown_threshold: float | None = None) -> tuple[Image.Image, Image.Image, dict, str]:
        """Whole-section mineral map (figure with legend), overlay, modal abundance and a table."""
        from .mapping import abundance_table, map_section
        from .mapping.figures import map_rgb, overlay_rgb, save_figure

        try:
            tile = int(tile)
        except (TypeError, ValueError):
            raise ServiceError(f"tile must be a whole number of pixels, got {tile!r}") from None
        if not MIN_TILE <= tile <= MAX_TILE:
            raise ServiceError(f"tile must be between {MIN_TILE} and {MAX_TILE} px, got {tile}")
        threshold = self._threshold(unknown_threshold)
        image, note = self.load(upload, max_pixels=self.limits.map_max_pixels)
        t0 = time.perf_counter()
        m = map_section(LockedPredictor(self.predictor, self._model_lock, self.limits.map_batch), np.asarray(image), tile=tile,
                        progress=False, canvas_max_side=self.limits.display_side, unknown_threshold=threshold)
        with self._plot_lock, tempfile.TemporaryDirectory() as tmp:
            with Image.open(save_figure(m, map_rgb(m), Path(tmp) / "map.png", title=f"mineral map, {tile} px tiles")) as im:
                figure = im.convert("RGB")
        seconds = time.perf_counter() - t0
        phases = m.abundance["phases"]
        abundance = {r["phase"]: r["area_percent"] / 100 for r in phases if r["pixels"]}
        text = (f"Mapped {image.size[0]}x{image.size[1]} px in {seconds:.1f} s: {m.timing['tiles']} tiles, "
                f"{m.timing['tiles_classified']} classified, unknown threshold {threshold:.2f}"
                + (f", open-set threshold {self.predictor.ood_threshold:.3g}." if self.predictor.ood is not None else ".")
                + (f" _{note}_" if note else "") + "\n\n" + abundance_table(phases))
        meta = {"kind": "mineral map", "tile": tile, "model": self.model_id}
        return stamp(figure, meta), stamp(Image.fromarray(overlay_rgb(m)), meta), abundance, text
