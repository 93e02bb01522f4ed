"""The model card: ``model_card.md`` (Jinja template) rendered with ``ModelCard.from_template`` into the
model folder's ``README.md``, so the Hub shows the metrics (``model-index``), the data, how the model was
initialised and trained, its limits and how to call it.

Facts are read from the folder where possible (``config.json`` labels and architecture, parameter count
from the safetensors header, ``eval_results.json`` of ``evaluate_and_report``) so a card cannot disagree
with the model it describes.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from huggingface_hub import EvalResult, ModelCard, ModelCardData

from .templates import template_path as packaged_template

TEMPLATE_PATH = packaged_template("model_card.md")  # the repo-root template, through hf_minerals.templates
DEFAULT_TAGS = ("image-classification", "mineralogy", "ore-microscopy", "reflected-light", "hf-minerals")
#: TrainingArguments fields worth stating in a card.
HYPERPARAMETER_FIELDS = (
    "learning_rate",
    "per_device_train_batch_size",
    "per_device_eval_batch_size",
    "gradient_accumulation_steps",
    "num_train_epochs",
    "max_steps",
    "optim",
    "lr_scheduler_type",
    "warmup_ratio",
    "warmup_steps",
    "weight_decay",
    "label_smoothing_factor",
    "seed",
    "bf16",
    "fp16",
)


def hyperparameters_from_args(args: Any, extra: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The card's hyper-parameter table from ``TrainingArguments`` (defaults that do nothing are skipped)."""
    out: dict[str, Any] = {}
    for name in HYPERPARAMETER_FIELDS:
        value = getattr(args, name, None)
        value = getattr(value, "value", value)  # enums -> str
        if value in (None, 0, 0.0, False, -1) and name not in ("seed",):
            continue
        out[name] = value
    if out.get("max_steps", -1) > 0:  # max_steps overrides num_train_epochs in the Trainer
        out.pop("num_train_epochs", None)
    world = getattr(args, "world_size", 1) or 1
    if "per_device_train_batch_size" in out:
        out["total_train_batch_size"] = out["per_device_train_batch_size"] * out.get("gradient_accumulation_steps", 1) * world
    out.update(dict(extra or {}))
    return out


def count_parameters(model_dir: str | Path) -> int:
    """Number of weights, read from the safetensors headers (no tensor is loaded)."""
    from safetensors import safe_open

    total = 0
    for file in sorted(Path(model_dir).glob("*.safetensors")):
        with safe_open(str(file), framework="pt") as f:
            for key in f.keys():
                n = 1
                for dim in f.get_slice(key).get_shape():
                    n *= dim
                total += n
    return total


def _human(n: int) -> str:
    return f"{n / 1e6:.2f} M" if n >= 1e6 else f"{n / 1e3:.1f} k"


def _is_hub_id(name: str | None) -> bool:
    return bool(name) and not Path(str(name)).exists() and str(name).count("/") <= 1 and not str(name).startswith(
        (".", "/", "compact:")
    )


def find_eval_results(model_dir: str | Path) -> dict[str, Any] | None:
    """``evaluate_and_report``'s results next to the model (``eval_results.json`` or ``eval/eval_results.json``).

    Trainer's own ``eval_results.json`` (``eval_loss``...) has no ``per_class`` and is ignored.
    """
    for candidate in (Path(model_dir) / "eval_results.json", Path(model_dir) / "eval" / "eval_results.json"):
        if candidate.exists():
            data = json.loads(candidate.read_text())
            if "per_class" in data:
                return data
    return None


def _ci_note(ci: Mapping[str, Any], metric: str) -> str:
    """`` (95% CI 0.871-0.948, bootstrap by group)``: the model-index has no interval field, so the name carries it."""
    if metric not in ci:
        return ""
    lo, hi = ci[metric]
    return f" (95% CI {lo:.4f}-{hi:.4f}, bootstrap by {ci.get('resampled_by', 'group')})"


def _data_description(dataset_label: str, synthetic: bool, sizes: Mapping[str, int] | None) -> str:
    text = f"Trained on {dataset_label}."
    if sizes:
        text += " Split sizes: " + ", ".join(f"{k} {v}" for k, v in sizes.items()) + " images."
    if synthetic:
        text += " All images are **synthetic**: rendered scenes from `hf_minerals.synthetic`, not photomicrographs."
    return text


def build_model_card(
    model_dir: str | Path,
    *,
    eval_results: Mapping[str, Any] | None = None,
    base_model: str | None = None,
    init: str = "pretrained",
    dataset_id: str | None = None,
    dataset_name: str | None = None,
    dataset_sizes: Mapping[str, int] | None = None,
    synthetic: bool | None = None,
    hyperparameters: Mapping[str, Any] | None = None,
    training: Mapping[str, Any] | None = None,
    repo_id: str | None = None,
    license: str = "apache-2.0",
    tags: Sequence[str] = (),
    notes: Sequence[str] = (),
    template_path: str | Path | None = None,
) -> ModelCard:
    """Render the card of the model in ``model_dir``.

    ``base_model``: the Hub id / path the weights (``init="pretrained"``) or architecture (``"scratch"``) came
    from; only a pretrained Hub id goes into the YAML ``base_model``. ``eval_results``: the dict of
    ``evaluate_and_report`` (default: found in the folder). ``synthetic`` defaults to what the evaluation says.
    """
    if init not in ("pretrained", "scratch"):
        raise ValueError(f"init must be 'pretrained' or 'scratch', got {init!r}")
    model_dir = Path(model_dir)
    config = json.loads((model_dir / "config.json").read_text())
    id2label = {int(k): v for k, v in config.get("id2label", {}).items()}
    class_names = [id2label[i] for i in sorted(id2label)]
    results = dict(eval_results) if eval_results is not None else find_eval_results(model_dir)
    if synthetic is None:
        synthetic = bool(results and results.get("synthetic"))
    model_name = repo_id.split("/")[-1] if repo_id else model_dir.resolve().name
    dataset_key = dataset_id or (str(results["dataset"]) if results else None) or "local"
    if _is_hub_id(dataset_key) or not dataset_key:
        dataset_yaml = dataset_key
    else:
        dataset_yaml = Path(dataset_key).name
    dataset_label = dataset_name or (
        f"the synthetic data set `{dataset_yaml}`" if synthetic else f"the data set `{dataset_yaml}`"
    )

    eval_entries = []
    if results:
        common = dict(
            task_type="image-classification",
            task_name="Image Classification",
            dataset_type=dataset_yaml,
            dataset_name=("synthetic " if synthetic else "") + (dataset_name or dataset_yaml),
            dataset_split=str(results.get("split", "test")),
        )
        ci = results.get("ci") or {}
        eval_entries = [
            EvalResult(**common, metric_type="accuracy", metric_name="Accuracy" + _ci_note(ci, "accuracy"),
                       metric_value=round(results["accuracy"], 4)),
            EvalResult(
                **common, metric_type="f1", metric_name="Macro F1" + _ci_note(ci, "macro_f1"), metric_args={"average": "macro"},
                metric_value=round(results["macro_f1"], 4),
            ),
            EvalResult(
                **common, metric_type="precision", metric_name="Macro precision", metric_args={"average": "macro"},
                metric_value=round(results["macro_precision"], 4),
            ),
            EvalResult(
                **common, metric_type="recall", metric_name="Macro recall", metric_args={"average": "macro"},
                metric_value=round(results["macro_recall"], 4),
            ),
        ]
        if results.get("ece_uncalibrated") is not None:
            eval_entries.append(EvalResult(**common, metric_type="ece", metric_name="ECE before calibration",
                                           metric_value=round(results["ece_uncalibrated"], 4)))
        if results.get("ece_calibrated") is not None:
            eval_entries.append(EvalResult(**common, metric_type="ece", metric_name="ECE after calibration",
                                           metric_value=round(results["ece_calibrated"], 4)))
    all_tags = list(dict.fromkeys([*DEFAULT_TAGS, *(("synthetic-data",) if synthetic else ()), *tags]))
    card_data = ModelCardData(
        base_model=base_model if init == "pretrained" and _is_hub_id(base_model) else None,
        datasets=[dataset_yaml] if _is_hub_id(dataset_key) else None,  # the Hub expects data set ids here
        library_name="transformers",
        pipeline_tag="image-classification",
        license=license,
        tags=all_tags,
        metrics=["accuracy", "f1", "precision", "recall"],
        model_name=model_name,
        eval_results=eval_entries or None,
    )
    per_class_table = ""
    if results:
        from .evaluation import per_class_markdown

        per_class_table = per_class_markdown(results)
    template = Path(template_path) if template_path else TEMPLATE_PATH
    return ModelCard.from_template(
        card_data,
        template_path=str(template),
        model_name=model_name,
        synthetic=synthetic,
        class_names=class_names,
        architecture=(config.get("architectures") or [config.get("model_type", "?")])[0],
        num_parameters=_human(count_parameters(model_dir)),
        init=init,
        base_model_ref=base_model or config.get("_name_or_path") or "a local configuration",
        notes=list(notes),
        results=results,
        dataset_label=dataset_label,
        per_class_table=per_class_table,
        has_confusion_matrix=(model_dir / "confusion_matrix.png").exists(),
        has_training_curves=(model_dir / "training_curves.png").exists(),
        photo_views=bool(config.get("hf_minerals_photo_views")),
        data_description=_data_description(dataset_label, synthetic, dataset_sizes),
        hyperparameters=dict(hyperparameters or {}),
        training=dict(training or {}),
        usage_id=repo_id or str(model_dir),
    )


def write_model_card(model_dir: str | Path, **kwargs: Any) -> Path:
    """Render the card (see ``build_model_card``) into ``model_dir/README.md`` and return its path."""
    card = build_model_card(model_dir, **kwargs)
    path = Path(model_dir) / "README.md"
    card.save(str(path))
    return path
