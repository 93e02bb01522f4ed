"""hf-minerals Space: upload a reflected-light photomicrograph, get the mineral, its probability and
the attribution map that shows where the model looked; map a whole section in the second tab.

Layout, wiring and launch only: the logic is ``hf_minerals.service.MineralService`` (images through
``hf_minerals.imageio.load_image``, the ONE ``Predictor``, ``hf_minerals.explain``, ``hf_minerals.mapping``);
its ``ServiceError`` becomes a ``gr.Error`` here.

Run locally (model: a Hub id or a local folder; default ``outputs/quickstart/model``)::

    HF_MINERALS_MODEL=outputs/quickstart/model python space/app.py --port 7860

As a library (tests, notebooks)::

    from app import build_app, launch_kwargs   # with space/ on sys.path
    demo = build_app(model="outputs/quickstart/model")   # queue already set
    demo.launch(**launch_kwargs())                       # upload limit, error messages

Limits come from environment variables (see ``hf_minerals.service.Limits``) and are documented in docs/space.md.
"""

from __future__ import annotations

import argparse
import functools
import logging
import os
import sys
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

import gradio as gr
from gradio import FileData

from hf_minerals.modeling import WeightsUnavailableError
from hf_minerals.service import (
    MAX_TILE,
    METHODS,
    MIN_TILE,
    Limits,
    MineralService,
    ModelNotFoundError,
    ServiceError,
    upload_path,
)

HERE = Path(__file__).resolve().parent
LOG = logging.getLogger("hf_minerals.space")

SYNTHETIC_NOTE = "Examples: SYNTHETIC images rendered by hf_minerals.synthetic, not real photomicrographs"
HOW_TO_READ = """
**How to read this.** The bars are the model's probabilities for the minerals it was trained on
(calibrated when the model ships a `calibration.json`). When the top probability is below the
*unknown threshold* the answer is **unknown mineral**: the grain may be a mineral the model never saw,
or the image too unlike its training data. When the image is unlike every mineral the model was trained
on (its open-set score, from `calibration.json`), or blank or noise, the answer is **unknown** however
confident the bars look. The coloured overlay shows which pixels pushed the top
class up (warm = more). Grad-CAM is coarse (one cell per 32 px of the model input) and answers
*where*, not *why*; integrated gradients and occlusion are finer but slower. A map on the grain says
the model used that grain; a map on scratches, pits or the border says it used an artefact: distrust
the answer. Colour is the main cue in reflected light, so greyscale or badly white-balanced images lose
accuracy. This is an aid for a petrographer, not a replacement: confirm with reflectance, anisotropy,
hardness and internal reflections.
"""


def user_errors(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Turn every failure into a ``gr.Error`` the user can read; log unexpected ones with a traceback."""

    @functools.wraps(fn)  # keeps the signature: API parameter names come from it
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except gr.Error:
            raise
        except ServiceError as exc:
            raise gr.Error(str(exc), print_exception=False) from None
        except MemoryError:
            LOG.error("out of memory in %s", fn.__name__)
            raise gr.Error("The server ran out of memory on this image; try a smaller one.") from None
        except Exception as exc:  # noqa: BLE001 - the server must keep serving whatever happens
            LOG.error("unexpected error in %s: %s\n%s", fn.__name__, exc, traceback.format_exc())
            raise gr.Error(f"Internal error ({type(exc).__name__}); the server logged it and keeps running.") from None

    return wrapper


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
    service = service or MineralService.from_pretrained(model, limits=limits, space_dir=HERE)
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
                if upload_path(upload) is None:  # cleared: empty the outputs, no error
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
            # its own queue (one map at a time), so maps never take the grain endpoints' slots; the model
            # itself is shared batch by batch, first come first served (hf_minerals.fairlock)
            map_button.click(user_errors(service.map_section), [section, tile, map_threshold],
                             [section_map, section_overlay, abundance, map_text], api_name="map_section",
                             concurrency_id="map", concurrency_limit=1, preprocess=False)

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
