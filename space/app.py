"""hf-minerals Space: upload a reflected-light photomicrograph, get the mineral, its probability and
the attribution map that shows where the model looked; map a whole section in the second tab.

The app is a thin face on the library: images come in through ``hf_minerals.imageio.load_image``
(pixel limit, modes, truncation), are classified by the ONE ``hf_minerals.predict.Predictor`` and
explained by ``hf_minerals.explain`` (probabilities + Grad-CAM in one pass); sections go to
``hf_minerals.mapping``. No preprocessing or attribution code lives here.

Run locally (model: a Hub id or a local folder; default ``outputs/quickstart/model``)::

    HF_MINERALS_MODEL=outputs/quickstart/model python space/app.py --port 7860

As a library (tests, notebooks)::

    from app import build_app, launch_kwargs   # with space/ on sys.path
    demo = build_app(model="outputs/quickstart/model")   # queue already set
    demo.launch(**launch_kwargs())                       # upload limit, error messages

Limits come from environment variables (see ``Limits``) and are documented in docs/space.md.
"""

from __future__ import annotations

import argparse
import copy
import functools
import json
import logging
import os
import sys
import tempfile
import threading
import time
import traceback
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import gradio as gr
import numpy as np
from gradio import FileData
from PIL import Image

from hf_minerals import explain as xai
from hf_minerals.imageio import ImageLoadError, load_image
from hf_minerals.inputs import limits as input_limits
from hf_minerals.modeling import WeightsUnavailableError
from hf_minerals.predict import UNKNOWN, Predictor

HERE = Path(__file__).resolve().parent
LOG = logging.getLogger("hf_minerals.space")

#: Written by ``hf_minerals.hub.publish_space`` so a published Space knows its model without a variable.
MODEL_ID_FILE = "model_id.txt"
QUICKSTART_MODEL = Path("outputs/quickstart/model")
#: Used when the model folder has no calibration.json (``hf-minerals calibrate`` writes one).
DEFAULT_UNKNOWN_THRESHOLD = 0.5
METHODS: list[tuple[str, str]] = [
    ("Grad-CAM (fast)", "gradcam"),
    ("Integrated gradients (slower)", "integrated_gradients"),
    ("Occlusion (slower)", "occlusion"),
]
METHOD_NAMES = {value: name for name, value in METHODS}
MIN_TILE, MAX_TILE = 112, 512  # whole-section tiles (px): bounds the number of tiles per request

SYNTHETIC_NOTE = "Examples: SYNTHETIC images rendered by hf_minerals.synthetic, not real photomicrographs"
HOW_TO_READ = """
**How to read this.** The bars are the model's probabilities for the minerals it was trained on
(calibrated when the model ships a `calibration.json`). When the top probability is below the
*unknown threshold* the answer is **unknown mineral**: the grain may be a mineral the model never saw,
or the image too unlike its training data. The coloured overlay shows which pixels pushed the top
class up (warm = more). Grad-CAM is coarse (one cell per 32 px of the model input) and answers
*where*, not *why*; integrated gradients and occlusion are finer but slower. A map on the grain says
the model used that grain; a map on scratches, pits or the border says it used an artefact: distrust
the answer. Colour is the main cue in reflected light, so greyscale or badly white-balanced images lose
accuracy. This is an aid for a petrographer, not a replacement: confirm with reflectance, anisotropy,
hardness and internal reflections.
"""


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
    display_side: int = 768  # longest side of the overlay shown in the page


class ModelNotFoundError(RuntimeError):
    """No model was configured and the quickstart model is not there."""


def resolve_model(model: str | os.PathLike | None = None) -> str:
    """The model to serve: argument > $HF_MINERALS_MODEL > model_id.txt > outputs/quickstart/model."""
    for candidate in (model, os.environ.get("HF_MINERALS_MODEL", "").strip() or None):
        if candidate:
            return str(candidate)
    id_file = HERE / MODEL_ID_FILE
    if id_file.is_file() and id_file.read_text().strip():
        return id_file.read_text().strip()
    for root in (Path.cwd(), HERE.parent):
        if (root / QUICKSTART_MODEL / "config.json").is_file():
            return str(root / QUICKSTART_MODEL)
    raise ModelNotFoundError(
        "No model to serve. Set HF_MINERALS_MODEL to a Hub model id (e.g. your-name/hf-minerals-swin-tiny) "
        "or a local folder holding config.json + model.safetensors + preprocessor_config.json, "
        "or run `make quickstart` to train the offline default into outputs/quickstart/model."
    )


def _upload_path(value: Any) -> str | None:
    """The local path of an uploaded image as Gradio hands it over (path, dict or FileData)."""
    if value is None:
        return None
    if isinstance(value, (str, os.PathLike)):
        return str(value)
    if isinstance(value, dict):
        return value.get("path") or None
    return getattr(value, "path", None)


def _source_note(path: str) -> str:
    """A word on converted inputs (16-bit, CMYK, alpha, greyscale), read from the header only."""
    try:
        with Image.open(path) as im:
            mode = im.mode
    except Exception:  # noqa: BLE001 - the image already loaded; the note is a nicety
        return ""
    if mode in ("RGB",):
        return ""
    if mode in ("L", "1", "I;16", "I;16B", "I;16L", "I", "F", "LA", "La"):
        return (f"Input was greyscale ({mode}); converted to RGB. Colour is the main cue for opaque "
                "minerals, so expect lower accuracy.")
    if mode in ("RGBA", "PA", "RGBa"):
        return f"Input mode {mode} converted to 8-bit RGB (transparent areas shown as black)."
    return f"Input mode {mode} converted to 8-bit RGB."


def _unit_interval(value: Any, name: str, default: float) -> float:
    """A number in [0, 1] from a request (None = default), or a message that says what was wrong."""
    try:
        x = float(value) if value is not None else float(default)
    except (TypeError, ValueError):
        raise gr.Error(f"{name} must be a number in [0, 1], got {value!r}", print_exception=False) from None
    if not 0.0 <= x <= 1.0:  # also refuses NaN
        raise gr.Error(f"{name} must be in [0, 1], got {x}", print_exception=False)
    return x


def user_errors(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Turn every failure into a ``gr.Error`` the user can read; log unexpected ones with a traceback."""

    @functools.wraps(fn)  # keeps the signature: API parameter names come from it
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except gr.Error:
            raise
        except ImageLoadError as exc:
            raise gr.Error(f"Cannot use this file: {exc.reason}.", print_exception=False) from None
        except MemoryError:
            LOG.error("out of memory in %s", fn.__name__)
            raise gr.Error("The server ran out of memory on this image; try a smaller one.") from None
        except Exception as exc:  # noqa: BLE001 - the server must keep serving whatever happens
            LOG.error("unexpected error in %s: %s\n%s", fn.__name__, exc, traceback.format_exc())
            raise gr.Error(f"Internal error ({type(exc).__name__}); the server logged it and keeps running.") from None

    return wrapper


class MineralService:
    """The Space's functions, free of UI code: load safely, classify, explain, map."""

    def __init__(self, predictor: Predictor, *, model_id: str = "", limits: Limits | None = None) -> None:
        self.predictor = predictor
        self.model_id = model_id
        self.limits = limits or Limits()
        self._explainers: dict[str, xai.Explainer] = {}
        self.default_threshold = (
            float(predictor.unknown_threshold) if predictor.unknown_threshold is not None else DEFAULT_UNKNOWN_THRESHOLD
        )
        self.calibrated = bool(getattr(predictor, "calibration", None))
        # Attribution hooks live on the shared model: one request at a time inside it.
        self._model_lock = threading.Lock()

    @classmethod
    def from_pretrained(cls, model: str | os.PathLike | None = None, limits: Limits | None = None) -> MineralService:
        model_id = resolve_model(model)
        return cls(Predictor.from_pretrained(model_id, batch_size=16), model_id=model_id, limits=limits)

    def method_options(self, method: str) -> dict[str, Any]:
        """Settings that keep the slower methods interactive on a CPU Space: integrated gradients with 16
        steps in one batch; occlusion with a window of 1/4 of the model input moved by 1/8 (7x7 = 49 passes)."""
        side = min(self.predictor.data_config.crop)
        if method == "integrated_gradients":
            return {"n_steps": 16, "internal_batch_size": 16}
        if method == "occlusion":
            return {"window": max(4, side // 4), "stride": max(2, side // 8), "perturbations_per_eval": 16}
        return {}

    def explainer(self, method: str) -> xai.Explainer:
        """One Explainer per attribution method, all sharing the predictor's model (built on first use)."""
        if method not in self._explainers:
            self._explainers[method] = xai.Explainer(self.predictor, method=method)
        return self._explainers[method]

    # -- input --------------------------------------------------------------------------------
    def load(self, upload: Any, *, max_pixels: int | None = None) -> tuple[Image.Image, str]:
        path = _upload_path(upload)
        if not path:
            raise gr.Error("No image: upload a photomicrograph (PNG, JPEG, TIFF or BMP) first.", print_exception=False)
        if not isinstance(path, (str, os.PathLike)):
            raise ImageLoadError(f"invalid file reference: 'path' must be a string, got {type(path).__name__}")
        notes: list[str] = []
        image = load_image(path, max_pixels=max_pixels or self.limits.max_pixels, min_side=self.limits.min_side,
                           max_bytes=int(self.limits.max_upload_mb * 2**20), notes=notes)
        return image, " ".join([*notes, _source_note(path)]).strip()

    def _threshold(self, value: Any) -> float:
        return _unit_interval(value, "unknown_threshold", self.default_threshold)

    def decide(self, probs: np.ndarray, threshold: float) -> dict[str, Any]:
        """The answer for one probability row at a per-request threshold (the shared predictor is not touched)."""
        pred = copy.copy(self.predictor)
        pred.unknown_threshold = threshold
        p = pred.decide(np.asarray(probs, dtype=np.float64)[None], top_k=len(self.predictor.labels))[0]
        return {
            "label": p.label,
            "unknown": p.label == UNKNOWN,
            "score": round(p.score, 6),
            "threshold": threshold,
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
            probs = self.predictor.predict_proba([image])[0]
        out = self.decide(probs, threshold)
        out.update(model=self.model_id, seconds=round(time.perf_counter() - t0, 3), note=note)
        return out

    def explain(self, upload: Any, method: str = "gradcam", opacity: float = 0.5,
                unknown_threshold: float | None = None) -> tuple[dict, Image.Image, str, dict, dict]:
        """Probabilities + attribution overlay in one pass; returns label, overlay, verdict, details, state."""
        if method not in METHOD_NAMES:
            raise gr.Error(f"method must be one of {sorted(METHOD_NAMES)}, got {method!r}", print_exception=False)
        threshold = self._threshold(unknown_threshold)
        alpha = _unit_interval(opacity, "opacity", 0.5)
        image, note = self.load(upload)
        t0 = time.perf_counter()
        with self._model_lock:
            result = self.explainer(method).explain([image], **self.method_options(method))
        seconds = time.perf_counter() - t0
        heat, probs = np.asarray(result.maps[0], dtype=np.float32), np.asarray(result.probs[0])
        display = self._display(image, result.views[0])
        decision = self.decide(probs, threshold)
        decision.update(method=method, model=self.model_id, seconds=round(seconds, 3), note=note)
        state = {"display": display, "heatmap": heat, "probs": probs, "details": decision}
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
        image = xai.overlay(state["display"], state["heatmap"], alpha=_unit_interval(opacity, "opacity", 0.5))
        return stamp(image, {"kind": "attribution overlay", "method": state["details"].get("method")})

    def redecide(self, state: dict | None, unknown_threshold: float) -> tuple[str, dict]:
        """New threshold, same probabilities: no model call."""
        if not state:
            return "", {}
        decision = {**state["details"], **self.decide(state["probs"], self._threshold(unknown_threshold))}
        state["details"] = decision
        return self.verdict(decision), decision

    def verdict(self, d: dict[str, Any]) -> str:
        top_name, top_p = next(iter(d["probabilities"].items()))
        cal = "calibrated" if d.get("calibrated") else "uncalibrated"
        if d["unknown"]:
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
        from hf_minerals import mapping
        from hf_minerals.mapping.figures import map_rgb, overlay_rgb, save_figure

        try:
            tile = int(tile)
        except (TypeError, ValueError):
            raise gr.Error(f"tile must be a whole number of pixels, got {tile!r}", print_exception=False) from None
        if not MIN_TILE <= tile <= MAX_TILE:
            raise gr.Error(f"tile must be between {MIN_TILE} and {MAX_TILE} px, got {tile}", print_exception=False)
        predictor = copy.copy(self.predictor)  # per-request threshold; the model is shared
        predictor.unknown_threshold = self._threshold(unknown_threshold)
        image, note = self.load(upload, max_pixels=self.limits.map_max_pixels)
        t0 = time.perf_counter()
        with self._model_lock, tempfile.TemporaryDirectory() as tmp:  # pyplot is not thread-safe either
            m = mapping.map_section(predictor, np.asarray(image), tile=tile, progress=False,
                                    canvas_max_side=self.limits.display_side)
            with Image.open(save_figure(m, map_rgb(m), Path(tmp) / "map.png", title=f"mineral map, {tile} px tiles")) as im:
                figure = im.convert("RGB")
        seconds = time.perf_counter() - t0
        phases = m.abundance["phases"]
        abundance = {r["phase"]: r["area_percent"] / 100 for r in phases if r["pixels"]}
        text = (f"Mapped {image.size[0]}x{image.size[1]} px in {seconds:.1f} s: {m.timing['tiles']} tiles, "
                f"{m.timing['tiles_classified']} classified, unknown threshold {predictor.unknown_threshold:.2f}."
                + (f" _{note}_" if note else "") + "\n\n" + abundance_table(phases))
        meta = {"kind": "mineral map", "tile": tile, "model": self.model_id}
        return stamp(figure, meta), stamp(Image.fromarray(overlay_rgb(m)), meta), abundance, text


def abundance_table(phases: list[dict[str, Any]]) -> str:
    """Modal abundance as a Markdown table (phases with any pixel or tile)."""
    lines = ["| phase | area % | ore % | tiles |", "|---|---:|---:|---:|"]
    for r in phases:
        if r["pixels"] or r["tiles"]:
            ore = "" if r["ore_percent"] is None else f"{r['ore_percent']:.2f}"
            lines.append(f"| {r['phase']} | {r['area_percent']:.2f} | {ore} | {r['tiles']} |")
    return "\n".join(lines)


def stamp(image: Image.Image, meta: dict[str, Any]) -> Image.Image:
    """Tag an output picture with what made it (PNG text chunk) and a request id. The id also keeps
    two identical outputs apart: Gradio caches by content hash and rewrites a same-hash file in place,
    which a concurrent download of that file can catch half-written."""
    image.info["hf-minerals"] = json.dumps({**meta, "request": uuid.uuid4().hex})
    return image


# -- UI -----------------------------------------------------------------------------------------
def _examples(kind: str) -> tuple[list[list[str]], list[str]]:
    """Synthetic example files (``space/examples/synthetic_*.png``) for a tab, with captions that say so."""
    files = sorted((HERE / "examples").glob("synthetic_*.png"))
    if kind == "section":
        files = [f for f in files if "_section" in f.stem]
        return [[str(f)] for f in files], [f"multi-mineral section ({f.stem}, SYNTHETIC)" for f in files]
    files = [f for f in files if "_section" not in f.stem]
    return [[str(f)] for f in files], [f"{f.stem.split('_')[1]} (SYNTHETIC)" for f in files]


def build_app(model: str | os.PathLike | None = None, *, service: MineralService | None = None,
              limits: Limits | None = None) -> gr.Blocks:
    """The Gradio Blocks app (queue configured); launch it with ``demo.launch(**launch_kwargs())``."""
    service = service or MineralService.from_pretrained(model, limits=limits)
    lim = service.limits
    n = len(service.predictor.labels)
    with gr.Blocks(title="hf-minerals: opaque-mineral identification", analytics_enabled=False,
                   delete_cache=(1800, 3600)) as demo:
        gr.Markdown(
            "# hf-minerals: which opaque mineral is this?\n"
            f"Upload a reflected-light photomicrograph (plane-polarised light, polished section). Model: `{service.model_id}` "
            f"· classes: {', '.join(service.predictor.labels)}. Limits: {lim.max_upload_mb:g} MB, "
            f"{lim.max_pixels / 1e6:.1f} MP, at least {lim.min_side} px per side."
        )
        with gr.Tab("Identify a grain"):
            state = gr.State(None, time_to_live=900)
            with gr.Row():
                with gr.Column():
                    image = gr.Image(type="filepath", image_mode=None, sources=["upload", "clipboard", "webcam"],
                                     label="Photomicrograph", elem_id="input-image", height=320)
                    method = gr.Radio(METHODS, value="gradcam", label="Attribution method")
                    opacity = gr.Slider(0.0, 1.0, value=0.5, step=0.05, label="Overlay opacity")
                    threshold = gr.Slider(0.0, 1.0, value=round(service.default_threshold, 3), step=0.01,
                                          label="Unknown threshold",
                                          info="below this top probability the answer is 'unknown mineral'"
                                          + (" (from calibration.json)" if service.calibrated else ""))
                    button = gr.Button("Identify", variant="primary", elem_id="identify")
                with gr.Column():
                    verdict = gr.Markdown(elem_id="verdict", label="verdict")
                    label = gr.Label(num_top_classes=n, show_heading=False, label="Probabilities", elem_id="label")
                    overlay = gr.Image(type="pil", format="png", label="Where the model looked", interactive=False, height=360,
                                       elem_id="overlay")
                    with gr.Accordion("Details (JSON)", open=False):
                        details = gr.JSON(label="details")
            examples, captions = _examples("grain")
            if examples:
                gr.Examples(examples, inputs=[image], example_labels=captions, label=SYNTHETIC_NOTE)
            gr.Markdown(HOW_TO_READ)

            explain_fn = user_errors(service.explain)
            outputs = [label, overlay, verdict, details, state]

            def auto(upload: Any, m: str, o: float, t: float):
                if _upload_path(upload) is None:  # cleared: empty the outputs, no error
                    return None, None, "", None, None
                return explain_fn(upload, m, o, t)

            common = dict(concurrency_id="model", preprocess=False)
            button.click(explain_fn, [image, method, opacity, threshold], outputs, api_name="explain", **common)
            gr.on([image.change, method.change], auto, [image, method, opacity, threshold], outputs,
                  api_visibility="private", **common)
            opacity.release(user_errors(service.reblend), [state, opacity], [overlay], api_visibility="private",
                            queue=False)
            threshold.release(user_errors(service.redecide), [state, threshold], [verdict, details],
                              api_visibility="private", queue=False)

        with gr.Tab("Whole section"):
            gr.Markdown(
                "Map a whole polished section: the image is cut into tiles, each tile is classified, and the "
                f"result is a mineral map with modal abundance. Images up to {lim.map_max_pixels / 1e6:.1f} MP."
            )
            with gr.Row():
                with gr.Column():
                    section = gr.Image(type="filepath", image_mode=None, sources=["upload", "clipboard"],
                                       label="Section image", elem_id="section-image")
                    tile = gr.Slider(MIN_TILE, MAX_TILE, value=224, step=16, label="Tile size (px of the image)")
                    map_threshold = gr.Slider(0.0, 1.0, value=round(service.default_threshold, 3), step=0.01,
                                              label="Unknown threshold")
                    map_button = gr.Button("Map section", variant="primary")
                with gr.Column():
                    section_map = gr.Image(type="pil", format="png", label="Mineral map", interactive=False)
                    section_overlay = gr.Image(type="pil", format="png", label="Map over the image",
                                               interactive=False)
                    abundance = gr.Label(label="Modal abundance (area fraction)", show_heading=False)
            map_text = gr.Markdown(label="abundance table")
            examples, captions = _examples("section")
            if examples:
                gr.Examples(examples, inputs=[section], example_labels=captions, label=SYNTHETIC_NOTE)
            map_button.click(user_errors(service.map_section), [section, tile, map_threshold],
                             [section_map, section_overlay, abundance, map_text], api_name="map_section", **common)

        def predict(image: FileData, unknown_threshold: float | None = None) -> dict:
            """Probabilities, answer ('unknown' below the threshold) and timing for one image, as JSON."""
            return user_errors(service.predict)(image, unknown_threshold)

        gr.api(predict, api_name="predict", concurrency_id="model")

    demo.queue(default_concurrency_limit=lim.concurrency, max_size=lim.queue_size)
    demo.service = service  # for tests and notebooks
    return demo


def launch_kwargs(limits: Limits | None = None) -> dict[str, Any]:
    """Server settings that belong to the app (upload bound, error messages, session cap); main() and tests use them."""
    lim = limits or Limits()
    return {"max_file_size": f"{lim.max_upload_mb:g}mb", "show_error": True, "footer_links": ["api"],
            "state_session_capacity": 200}  # each session keeps a <= 768 px picture + map


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Serve the hf-minerals Space locally.")
    parser.add_argument("--model", default=None, help="Hub id or local folder (default: $HF_MINERALS_MODEL, "
                        "then outputs/quickstart/model)")
    parser.add_argument("--host", default=os.environ.get("GRADIO_SERVER_NAME", "127.0.0.1"))
    parser.add_argument("--port", type=int, default=int(os.environ.get("GRADIO_SERVER_PORT", "7860")))
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per request otherwise
    try:
        demo = build_app(args.model)
    except (ModelNotFoundError, WeightsUnavailableError) as exc:
        print(f"hf-minerals Space: {exc}", file=sys.stderr)
        return 2
    demo.launch(server_name=args.host, server_port=args.port, **launch_kwargs(demo.service.limits))
    return 0


if __name__ == "__main__":
    sys.exit(main())
