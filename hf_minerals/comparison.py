"""The paper's comparison: Swin-tiny vs MobileNetV2 vs ResNet50, ImageNet-pretrained vs from scratch.

Each (recipe, init) pair is trained with the training library (``run_training``, in this process), its test
split evaluated by ``evaluate_and_report`` and its inference speed measured through the one ``Predictor``.
Results go to ``comparison.json``, ``comparison.md`` (paper-style table) and ``comparison.png``.

Honesty rules: a pretrained row whose weights cannot be had is reported as *not run*, with the reason -
never trained from random weights under the pretrained name. Offline (``--variant auto`` with the Hub
offline, or ``--variant compact``), scratch rows use the compact configs of ``hf_minerals/model_configs``
and every such row says "offline: compact random-init variant, not the ImageNet model".
"""

from __future__ import annotations

import dataclasses
import json
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from .data.loading import load_split
from .evaluation import RESULTS_FILE
from .imageio import load_image
from .model_card import count_parameters
from .modeling import WeightsUnavailableError
from .plots import plot_comparison
from .runtime import machine_info, timeit
from .stats import format_ci

logger = logging.getLogger(__name__)

RECIPES_DIR = Path(__file__).resolve().parent.parent / "recipes"
#: compact stand-in of each paper recipe (a small config of the same family, built locally).
COMPACT_OF = {"swin_tiny": "compact:swin", "mobilenet_v2": "compact:mobilenet_v2", "resnet50": "compact:resnet"}
OFFLINE_NOTE = "offline: compact random-init variant, not the ImageNet model"
PAPER_NOTE = (
    "For reference, Cai et al. (2024) report a best test accuracy of 0.92 for ImageNet-pretrained Swin-tiny on their "
    "(private) photomicrographs; numbers here come from the data set named above and are not comparable to it."
)


def recipe_path(name: str) -> Path:
    """``swin_tiny`` -> ``recipes/swin_tiny.yaml`` (cwd first, then the repository); a path is taken as is."""
    path = Path(name)
    if path.suffix in (".yaml", ".yml"):
        if not path.exists():
            raise FileNotFoundError(f"recipe {path} not found")
        return path
    for base in (Path("recipes"), RECIPES_DIR):
        if (base / f"{name}.yaml").exists():
            return base / f"{name}.yaml"
    raise FileNotFoundError(f"no recipe '{name}' in recipes/ (have: {', '.join(sorted(p.stem for p in RECIPES_DIR.glob('*.yaml')))})")


def recipe_label(name: str) -> str:
    """Row name: ``swin_tiny``, ``paper-swin_tiny`` for ``paper/swin_tiny`` (so both can sit in one table), or
    the stem of a ``.yaml`` path."""
    if Path(name).suffix in (".yaml", ".yml"):
        return Path(name).stem
    return name.strip("/").replace("/", "-")


def hub_offline() -> bool:
    import huggingface_hub

    return bool(huggingface_hub.constants.HF_HUB_OFFLINE)


def _recipe_model(path: Path) -> str:
    from .training.config import load_recipe

    return str(load_recipe(path).get("model_name_or_path") or "")


def plan_runs(recipes: Sequence[str], inits: Sequence[str], variant: str = "auto") -> list[dict[str, Any]]:
    """What each row will train: the model actually used, or why it cannot run. No training here."""
    from .modeling import check_pretrained_available

    if variant not in ("auto", "full", "compact"):
        raise ValueError(f"variant must be auto, full or compact, got {variant!r}")
    compact = variant == "compact" or (variant == "auto" and hub_offline())
    plan = []
    for recipe in recipes:
        path = recipe_path(recipe)
        model = _recipe_model(path)
        for init in inits:
            row: dict[str, Any] = {"recipe": recipe_label(recipe), "recipe_path": str(path), "init": init,
                                   "recipe_model": model, "status": "planned", "note": ""}
            if init == "pretrained":
                try:
                    check_pretrained_available(model)
                    row["model"] = model
                    row["weights"] = "ImageNet-pretrained" if "/" in model else "pretrained"
                except WeightsUnavailableError as exc:
                    row.update(status="not run", model=model, weights="unavailable",
                               note=str(exc).splitlines()[0])
            elif compact:
                stem = Path(recipe).stem
                if stem not in COMPACT_OF:
                    row.update(status="not run", model=model, weights="random init",
                               note=f"no compact variant for recipe '{stem}' (have {', '.join(COMPACT_OF)})")
                else:
                    row.update(model=COMPACT_OF[stem], weights="random init (compact)", note=OFFLINE_NOTE)
            else:
                row.update(model=model, weights="random init")
            plan.append(row)
    return plan


def inference_speed(model_dir: str | Path, images: list[Any], batch_size: int = 32, repeats: int = 5) -> float:
    """Images per second of ``Predictor.predict_proba`` (preprocessing included), best of ``repeats``."""
    import torch

    from .predict import Predictor

    torch.set_flush_denormal(True)  # random-init conv nets hit denormals on CPU
    predictor = Predictor.from_pretrained(model_dir, batch_size=batch_size)
    seconds = timeit(lambda: predictor.predict_proba(images), repeats=repeats, warmup=2)
    return len(images) / seconds


def _train_one(row: dict[str, Any], recipe: Path, dataset: str, out: Path, train_argv: Sequence[str]) -> dict[str, Any]:
    from .training import run_training
    from .training.config import parse_args

    argv = ["--config", str(recipe), *train_argv, "--model_name_or_path", row["model"], "--init", row["init"],
            "--dataset_name", dataset, "--output_dir", str(out)]
    if "--report_to" not in train_argv:
        argv += ["--report_to", "none"]
    model_args, data_args, training_args = parse_args(argv)
    if not data_args.test_split:
        raise ValueError("the comparison needs a test split (--test_split)")
    t0 = time.perf_counter()
    results = run_training(model_args, data_args, training_args)
    wall = time.perf_counter() - t0
    report_dir = Path(data_args.report_dir or out)
    report = json.loads((report_dir / RESULTS_FILE).read_text())
    return {"results": results, "report": report, "wall": wall, "test_split": data_args.test_split,
            "predictions": str(report_dir / "predictions.csv")}


def read_predictions(path: str | Path) -> list[dict[str, str]]:
    """``predictions.csv`` of ``evaluate_and_report``: one row per test image, in data-set order."""
    import csv

    with Path(path).open(newline="") as f:
        return list(csv.DictReader(f))


def paired_differences(rows: Sequence[dict[str, Any]], seed: int = 0) -> list[dict[str, Any]]:
    """Every pair of finished rows, compared on the same test images by a paired bootstrap resampled by group.

    A difference is marked ``beyond_noise`` when its 95 % interval excludes 0; otherwise the test set
    cannot tell the two models apart.
    """
    from .stats import paired_difference

    ran = [r for r in rows if r.get("status") == "ok" and r.get("predictions")]
    preds = {id(r): read_predictions(r["predictions"]) for r in ran}
    out = []
    for i, a in enumerate(ran):
        for b in ran[i + 1 :]:
            pa, pb = preds[id(a)], preds[id(b)]
            key = lambda p: [(q["index"], q["source_path"], q["label"]) for q in p]  # noqa: E731
            if key(pa) != key(pb):
                raise ValueError(f"{a['recipe']}/{a['init']} and {b['recipe']}/{b['init']} were not tested on the same images")
            names = sorted({q["label"] for q in pa} | {q["predicted"] for q in pa} | {q["predicted"] for q in pb})
            ids = {n: k for k, n in enumerate(names)}
            refs = [ids[q["label"]] for q in pa]
            groups = [q.get("group") or q["index"] for q in pa]
            diff = paired_difference(refs, [ids[q["predicted"]] for q in pa], [ids[q["predicted"]] for q in pb],
                                     len(names), groups, seed=seed)
            out.append({"a": f"{a['recipe']} / {a['init']}", "b": f"{b['recipe']} / {b['init']}", **diff})
    return out


def run_comparison(
    recipes: Sequence[str],
    inits: Sequence[str],
    dataset: str,
    output_dir: str | Path,
    *,
    variant: str = "auto",
    train_argv: Sequence[str] = (),
    speed_images: int = 64,
) -> dict[str, Any]:
    """Train + evaluate every (recipe, init) pair, then write comparison.json / .md / .png into ``output_dir``."""
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    plan = plan_runs(recipes, inits, variant)
    rows = []
    synthetic = False
    speed_set: list[Any] | None = None
    for row in plan:
        name = f"{row['recipe']}-{row['init']}"
        if row["status"] != "planned":
            logger.warning("%s: %s", name, row["note"])
            rows.append(row)
            continue
        logger.info("=== %s: training %s (%s) ===", name, row["model"], row["weights"])
        done = _train_one(row, Path(row["recipe_path"]), dataset, output_dir / name, train_argv)
        report = done["report"]
        synthetic = synthetic or bool(report.get("synthetic"))
        if speed_set is None:
            split, _ = load_split(dataset, done["test_split"])
            speed_set = [load_image(split[i]["image"]) for i in range(min(speed_images, len(split)))]
        model_dir = output_dir / name
        row.update(
            status="ok",
            accuracy=report["accuracy"],
            macro_precision=report["macro_precision"],
            macro_recall=report["macro_recall"],
            macro_f1=report["macro_f1"],
            ece=report["ece"],
            ci=report.get("ci"),
            ece_uncalibrated=report.get("ece_uncalibrated"),
            predictions=done["predictions"],
            per_class_f1={k: v["f1"] for k, v in report["per_class"].items()},
            n_test=report["n"],
            parameters=count_parameters(model_dir),
            train_seconds=round(float(done["results"].get("train_runtime", done["wall"])), 2),
            inference_images_per_s=round(inference_speed(model_dir, speed_set), 2),
            output_dir=str(model_dir),
        )
        rows.append(row)
    result = {
        "dataset": str(dataset),
        "synthetic": synthetic,
        "variant": variant,
        "hub_offline": hub_offline(),
        "train_args": list(train_argv),
        "notes": sorted({r["note"] for r in rows if r["note"]}),
        "rows": rows,
        "differences": paired_differences(rows),
        "machine": machine_info(),
    }
    (output_dir / "comparison.json").write_text(json.dumps(result, indent=2) + "\n")
    (output_dir / "comparison.md").write_text(comparison_markdown(result))
    ran = [r for r in rows if r["status"] == "ok"]
    if ran:
        plot_comparison(
            [{"name": f"{r['recipe']} / {r['init']}" + (" (compact)" if r["note"] == OFFLINE_NOTE else ""), **r} for r in ran],
            output_dir / "comparison.png",
            metrics=("accuracy", "macro_f1"),
            title="Model comparison",
            synthetic=synthetic,
            note=OFFLINE_NOTE if any(r["note"] == OFFLINE_NOTE for r in ran) else None,
        )
    result["output_dir"] = str(output_dir)
    return result


def _fmt(value: Any, spec: str = ".3f") -> str:
    return "-" if value is None else format(value, spec)


def _verdict(diff: dict[str, Any]) -> str:
    return "**larger than the noise**" if diff["beyond_noise"] else "within noise"


def comparison_markdown(result: dict[str, Any]) -> str:
    """Paper-style tables: overall metrics, cost and speed per row; per-class F1; notes."""
    rows = result["rows"]
    data = f"`{result['dataset']}`" + (" (**synthetic** data)" if result["synthetic"] else "")
    lines = [
        "# Model comparison" + (" (synthetic data)" if result["synthetic"] else ""),
        "",
        f"Test split of {data}. Inference speed: `Predictor.predict_proba` on CPU "
        f"({result['machine']['torch_threads']} threads, preprocessing included).",
        "",
    ]
    if any(r["note"] == OFFLINE_NOTE for r in rows):
        lines += [f"> **{OFFLINE_NOTE}.** The Hub was not reachable, so these rows are small models of the same family",
                  "> trained from random weights; they test the pipeline, not the paper's transfer-learning result.", ""]
    lines += [
        "| model | init | weights | accuracy [95 % CI] | macro P | macro R | macro F1 [95 % CI] | ECE (calibrated) "
        "| parameters (M) | train time (s) | inference (img/s) | note |",
        "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for r in rows:
        params = _fmt(r["parameters"] / 1e6, ".2f") if r.get("parameters") else "-"
        note = "offline compact variant" if r["note"] == OFFLINE_NOTE else r["note"]
        if r["status"] != "ok":
            note = f"{r['status']}: {note}"
        ci = r.get("ci") or {}
        acc = format_ci(r["accuracy"], ci.get("accuracy")) if r.get("accuracy") is not None else "-"
        f1 = format_ci(r["macro_f1"], ci.get("macro_f1")) if r.get("macro_f1") is not None else "-"
        lines.append(
            f"| {r['recipe']} (`{r['model']}`) | {r['init']} | {r['weights']} | {acc} | "
            f"{_fmt(r.get('macro_precision'))} | {_fmt(r.get('macro_recall'))} | {f1} | "
            f"{_fmt(r.get('ece'))} | {params} | {_fmt(r.get('train_seconds'), '.1f')} | "
            f"{_fmt(r.get('inference_images_per_s'), '.1f')} | {note} |"
        )
    cis = [r["ci"] for r in rows if r.get("ci")]
    if cis:
        lines += ["", f"Intervals: 95 % percentile bootstrap ({cis[0]['n_boot']} resamples) by {cis[0]['resampled_by']} "
                  "of the test set; crops of one photomicrograph are resampled together."]
    diffs = result.get("differences") or []
    if diffs:
        lines += ["", "Differences on the same test images (A minus B, paired bootstrap by group; "
                  "**larger than the noise** when the 95 % interval excludes 0):", "",
                  "| A | B | accuracy difference [95 % CI] | | macro-F1 difference [95 % CI] | |",
                  "|---|---|---:|---|---:|---|"]
        for d in diffs:
            lines.append(
                f"| {d['a']} | {d['b']} | {format_ci(d['accuracy']['difference'], d['accuracy']['ci'], '+.3f')} | "
                f"{_verdict(d['accuracy'])} | {format_ci(d['macro_f1']['difference'], d['macro_f1']['ci'], '+.3f')} | "
                f"{_verdict(d['macro_f1'])} |"
            )
    ran = [r for r in rows if r["status"] == "ok"]
    if ran:
        classes = list(ran[0]["per_class_f1"])
        lines += ["", "Per-class F1:", "", "| model | init | " + " | ".join(classes) + " |",
                  "|---|---|" + "---:|" * len(classes)]
        for r in ran:
            lines.append(f"| {r['recipe']} | {r['init']} | " + " | ".join(_fmt(r["per_class_f1"].get(c)) for c in classes) + " |")
    lines += ["", PAPER_NOTE, ""]
    if result["train_args"]:
        lines += [f"Training overrides for every row: `{' '.join(result['train_args'])}`.", ""]
    lines += ["![comparison](comparison.png)", ""]
    return "\n".join(lines)


@dataclass
class CompareArguments:
    """``hf-minerals compare``; training flags it does not know (--max_steps 20 ...) go to every run."""

    dataset: str = field(metadata={"help": "data-set folder (save_to_disk) or Hub id, with a test split"})
    recipes: list[str] = field(default_factory=lambda: ["swin_tiny", "mobilenet_v2", "resnet50"])
    init: list[str] = field(default_factory=lambda: ["pretrained", "scratch"],
                            metadata={"choices": ["pretrained", "scratch"]})
    output_dir: str = "outputs/comparison"
    variant: Literal["auto", "full", "compact"] = field(
        default="auto", metadata={"help": "auto: full models, compact ones for scratch rows when the Hub is offline"})
    speed_images: int = field(default=64, metadata={"help": "test images timed for inference speed"})
    epochs: float | None = field(default=None, metadata={"help": "shorthand for --num_train_epochs"})


#: training arguments compare sets itself for every row
PER_ROW = ("model_name_or_path", "init", "dataset_name", "output_dir")


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """``scripts/compare.py`` / ``hf-minerals compare``; training flags go to every training run."""
    from .cli_args import parse_command_line, save_args, to_argv
    from .training.config import known_fields

    passthrough = known_fields() - set(PER_ROW) - {f.name for f in dataclasses.fields(CompareArguments)}
    args, overrides = parse_command_line([CompareArguments], argv, prog="hf-minerals compare",
                                         description=CompareArguments.__doc__, passthrough=passthrough)
    rest = to_argv(overrides)
    if args.epochs is not None:
        rest += ["--num_train_epochs", str(args.epochs)]
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    result = run_comparison(args.recipes, args.init, args.dataset, args.output_dir, variant=args.variant,
                            train_argv=rest, speed_images=args.speed_images)
    save_args(Path(args.output_dir) / "args.yaml", args, overrides, command="hf-minerals compare")
    for r in result["rows"]:
        ci = r.get("ci") or {}
        score = (f"accuracy={format_ci(r['accuracy'], ci.get('accuracy'), '.4f')} "
                 f"macro_f1={format_ci(r['macro_f1'], ci.get('macro_f1'), '.4f')}" if r["status"] == "ok" else r["status"])
        print(f"{r['recipe']:>14} {r['init']:<10} {score}  {r['note']}")
    for d in result["differences"]:
        verdict = "larger than the noise" if d["accuracy"]["beyond_noise"] else "within noise"
        print(f"{d['a']} - {d['b']}: accuracy {format_ci(d['accuracy']['difference'], d['accuracy']['ci'], '+.4f')} ({verdict})")
    print(f"comparison written to {result['output_dir']}/ (comparison.md, comparison.json, comparison.png, args.yaml)")
    return result
