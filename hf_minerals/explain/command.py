"""``hf-minerals explain``: overlays per image x model x method and the side-by-side grid figure.

The grid is the paper's CAM figure: rows are images; columns are methods (one model) or models
(several models after ``--model``), each cell captioned with the predicted mineral and its probability.

    python scripts/explain.py --model outputs/quickstart/model --images a.png b.png \\
        --methods gradcam,integrated_gradients,occlusion --output_dir outputs/explain
"""

from __future__ import annotations

import json
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
from PIL import Image, ImageDraw, ImageFont
from tqdm import tqdm

from ..imageio import ImageLoadError, load_image
from ..inputs import scan_paths
from .explainer import Explainer
from .methods import METHODS, attribute
from .render import model_view, overlay

TITLES = {"gradcam": "Grad-CAM", "guided_gradcam": "Guided Grad-CAM",
          "integrated_gradients": "Integrated Gradients", "occlusion": "Occlusion"}


@dataclass
class Cell:
    """One rendered map: which image, model and method, what the model predicted, where it was saved."""

    image: str
    model: str
    method: str
    label: str
    probability: float
    target: str
    overlay: Image.Image
    path: str


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-")[:60] or "x"


def _model_name(model_id: str) -> str:
    p = Path(model_id)
    return p.parent.name + "/" + p.name if p.name == "model" and p.parent.name else p.name or model_id


def caption(img: Image.Image, text: str) -> Image.Image:
    """The image with a caption strip underneath (readable whatever the map's colours)."""
    pad, size = 4, max(11, img.width // 18)
    font = ImageFont.load_default(size=size)
    while size > 8 and font.getlength(text) > img.width - 2 * pad:
        size -= 1
        font = ImageFont.load_default(size=size)
    h = font.getbbox("Ag")[3] + 2 * pad
    out = Image.new("RGB", (img.width, img.height + h), "white")
    out.paste(img, (0, 0))
    ImageDraw.Draw(out).text((pad, img.height + pad), text, fill="black", font=font)
    return out


def _display(view: np.ndarray, min_side: int = 256) -> Image.Image:
    """The model's view, enlarged for reading when the model's input is small (e.g. 64 px)."""
    img = Image.fromarray(view)
    scale = max(1, -(-min_side // min(img.size)))
    return img.resize((img.width * scale, img.height * scale), Image.NEAREST) if scale > 1 else img


def explain_files(models: list[str], images: list[str], methods: list[str], output: Path, *,
                  target: str | None = None, alpha: float = 0.5, **opts: Any) -> tuple[list[Cell], dict]:
    """Write one captioned overlay per image x model x method; return the cells and the views."""
    from ..predict import Predictor

    output.mkdir(parents=True, exist_ok=True)
    loaded: dict[str, Image.Image] = {}
    scan = scan_paths(images)  # every path left out is listed with its reason
    for src, reason in scan.skipped:
        print(f"skipping {src}: {reason}", file=sys.stderr)
    for src in map(str, scan.files):
        notes: list[str] = []
        try:
            loaded[src] = load_image(src, notes=notes)
        except ImageLoadError as exc:
            print(f"skipping {src}: {exc.reason}", file=sys.stderr)
        for note in notes:
            print(f"note: {src}: {note}", file=sys.stderr)
    if not loaded:
        raise SystemExit("explain: error: no usable image among --images (reasons above)")
    cells: list[Cell] = []
    views: dict[str, np.ndarray] = {}
    bar = tqdm(total=len(models) * len(methods) * len(loaded), desc="explain", unit="map")
    for mid in models:
        predictor = Predictor.from_pretrained(mid, backend="torch")  # attribution needs torch's gradients
        name = _model_name(mid)
        imgs = list(loaded.values())
        # Grad-CAM + probabilities in one pass; the other methods explain the same (predicted) class.
        ex = Explainer(predictor).explain(imgs, target=target)
        targets = [predictor.labels[int(np.argmax(p))] for p in ex.probs] if target is None else [target] * len(imgs)
        pixel_values = predictor.preprocess(imgs)
        for method in methods:
            maps = ex.maps if method == "gradcam" else attribute(predictor, pixel_values, targets, method, **opts)
            for k, src in enumerate(loaded):
                view = model_view(imgs[k], predictor.data_config)
                views.setdefault(src, view)
                pred = ex.predictions[k]
                text = f"{pred.label} {pred.score:.2f}" + ("" if target is None else f" | map for {target}")
                ov = overlay(_display(view), maps[k], alpha=alpha)
                path = output / f"{_slug(Path(src).stem)}__{_slug(name)}__{method}.png"
                caption(ov, f"{TITLES[method]}: {text}").save(path)
                cells.append(Cell(src, name, method, pred.label, float(pred.score), targets[k], ov, str(path)))
                bar.update()
    bar.close()
    return cells, views


def grid_figure(cells: list[Cell], views: dict, path: Path, by: str = "method") -> Path:
    """Rows: images; columns: the input, then each method (``by='method'``) or model x method."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = list(dict.fromkeys(c.image for c in cells))
    cols = list(dict.fromkeys((c.model, c.method) for c in cells))
    lookup = {(c.image, c.model, c.method): c for c in cells}
    fig, axes = plt.subplots(len(rows), len(cols) + 1, figsize=(2.4 * (len(cols) + 1), 2.6 * len(rows)), squeeze=False)
    for r, img in enumerate(rows):
        axes[r, 0].imshow(views[img])
        axes[r, 0].set_xlabel(Path(img).stem[:32], fontsize=8)
        if r == 0:
            axes[r, 0].set_title("input (model view)", fontsize=9)
        for c, (model, method) in enumerate(cols, start=1):
            cell = lookup.get((img, model, method))
            ax = axes[r, c]
            if cell is not None:
                ax.imshow(cell.overlay)
                ax.set_xlabel(f"{cell.label} {cell.probability:.2f}", fontsize=9)
            if r == 0:
                ax.set_title(TITLES[method] if by == "method" else f"{model}\n{TITLES[method]}", fontsize=9)
    for ax in axes.ravel():
        ax.set_xticks([])
        ax.set_yticks([])
    synthetic = any("synthetic" in Path(i).name.lower() for i in rows)
    fig.suptitle("Attribution maps (red = more important)" + (" - SYNTHETIC images" if synthetic else ""), fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


@dataclass
class ExplainArguments:
    """``hf-minerals explain``: attribution overlays per image x model x method, and the grid figure."""

    model: list[str] = field(metadata={"help": "model folder(s) or Hub id(s); several compare models: --model A B"})
    images: list[str] = field(metadata={"help": "image files"})
    methods: str = field(default="gradcam", metadata={"help": f"comma-separated, from {','.join(METHODS)}"})
    output_dir: str = field(default="outputs/explain", metadata={"help": "folder for overlays, grid.png, explain.json"})
    target: str | None = field(default=None, metadata={"help": "explain this class instead of the predicted one"})
    alpha: float = field(default=0.5, metadata={"help": "overlay opacity of the heat map"})
    n_steps: int = field(default=32, metadata={"help": "integrated gradients: path steps"})
    noise_tunnel: bool = field(default=False, metadata={"help": "integrated gradients: smooth with a NoiseTunnel"})
    baseline: Literal["mean", "black"] = field(default="mean", metadata={"help": "IG / occlusion reference image"})


def main(argv: list[str] | None = None) -> dict:
    from ..cli_args import parse_command_line, save_args

    (args,) = parse_command_line([ExplainArguments], argv, prog="hf-minerals explain", description=__doc__)
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    bad = [m for m in methods if m not in METHODS]
    if bad or not methods:
        sys.exit(f"hf-minerals explain: error: unknown method(s) {bad}; choose from {','.join(METHODS)}")
    out = Path(args.output_dir)
    opts = {"n_steps": args.n_steps, "noise_tunnel": args.noise_tunnel, "baseline": args.baseline}
    cells, views = explain_files(args.model, args.images, methods, out, target=args.target, alpha=args.alpha, **opts)
    grid = grid_figure(cells, views, out / "grid.png", by="model" if len(args.model) > 1 else "method")
    summary = {
        "grid": str(grid),
        "models": args.model,
        "methods": methods,
        "maps": [{k: getattr(c, k) for k in ("image", "model", "method", "label", "probability", "target", "path")}
                 for c in cells],
    }
    (out / "explain.json").write_text(json.dumps(summary, indent=2))
    save_args(out / "args.yaml", args, command="hf-minerals explain")
    print(f"wrote {len(cells)} overlays and {grid} (index: {out / 'explain.json'})")
    return summary
