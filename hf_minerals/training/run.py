"""The training run, as numbered steps (alignment-handbook style); ``scripts/train.py`` only calls ``main``.

seed -> last checkpoint -> model files check (fail fast) -> data -> model -> Trainer -> train (resume)
-> save model + processor -> curves -> test evaluation -> all_results.json -> model card -> push.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import sys
import time
from pathlib import Path
from typing import Any

import transformers
from transformers import TrainerCallback, TrainingArguments, set_seed
from transformers.trainer_utils import get_last_checkpoint

from ..modeling import (
    COMPACT_PREFIX,
    WeightsUnavailableError,
    build_classifier,
    check_overrides_keep_shapes,
    check_pretrained_available,
    use_offline_mode_if_unreachable,
)
from ..preprocessing import DataConfig
from .config import ConfigError, DataArguments, ModelArguments, parse_args, save_args
from .data import (
    TrainingDataError,
    attach_transforms,
    class_weights,
    collate,
    hold_out_calibration,
    load_training_data,
)
from .trainer import MineralTrainer, WeightedLoss

logger = logging.getLogger("hf_minerals.training")
NO_RESUME = ("false", "no", "none", "0", "never")


def _setup_logging(args: TrainingArguments) -> None:
    level = args.get_process_log_level()
    logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s", level=logging.INFO, stream=sys.stdout)
    logger.setLevel(level)
    logging.getLogger("hf_minerals").setLevel(level)
    transformers.utils.logging.set_verbosity(level)


def find_checkpoint(args: TrainingArguments) -> str | None:
    """The checkpoint to resume from: ``--resume_from_checkpoint PATH``, none (``false``), or the last in output_dir."""
    wanted = args.resume_from_checkpoint
    if isinstance(wanted, str) and wanted.lower() in NO_RESUME:
        return None
    if wanted and wanted.lower() not in ("true", "auto", "last"):
        if not Path(wanted).is_dir():
            raise ConfigError(f"--resume_from_checkpoint {wanted}: no such checkpoint folder")
        return wanted
    last = get_last_checkpoint(args.output_dir) if Path(args.output_dir).is_dir() else None
    if last:
        logger.info("resuming from %s (pass --resume_from_checkpoint false or a new --output_dir to start over)", last)
    return last


def counted(metrics_fn: Any) -> Any:
    """Add ``n`` (samples the metrics saw, after the cross-process gather) to the Trainer's metrics."""

    def compute(eval_pred: Any) -> dict[str, float]:
        return {**metrics_fn(eval_pred), "n": int(len(eval_pred.label_ids))}

    return compute


def _is_main(args: TrainingArguments) -> bool:
    return args.process_index == 0


def _push(output_dir: str, args: TrainingArguments) -> str:
    """One push of the finished folder (model, processor, card, plots, results) via ``hub.publish_model``."""
    from ..hub import publish_model

    repo_id = args.hub_model_id or Path(output_dir).name
    return publish_model(output_dir, repo_id, private=bool(args.hub_private_repo), token=args.hub_token)


def cpu_threads(training_args: TrainingArguments) -> int | None:
    """Torch threads for CPU training: the cores left after the data-loader workers (each worker runs the
    augmentation single-threaded), divided among the processes on this machine. Why: on a small box, torch's
    default (all cores) oversubscribes as soon as workers or other jobs run, and its many tiny augmentation
    and model ops then wait on descheduled threads - measured 50x slower (0.1 vs 5.2 steps/s, offline recipe,
    2 cores, one other busy process). ``OMP_NUM_THREADS`` set by the user wins."""
    if os.environ.get("OMP_NUM_THREADS"):
        return None
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    local = max(1, int(os.environ.get("LOCAL_WORLD_SIZE", "1")))
    per_process = cores // local - int(training_args.dataloader_num_workers or 0)
    return max(1, per_process)


def run_training(
    model_args: ModelArguments,
    data_args: DataArguments,
    training_args: TrainingArguments,
    callbacks: list[TrainerCallback] | None = None,
) -> dict[str, Any]:
    """Train, evaluate, save, card and (optionally) push; return the metrics of ``all_results.json``."""
    t_start = time.perf_counter()
    # 1. seed, logging, the resolved arguments
    _setup_logging(training_args)
    set_seed(training_args.seed)
    if training_args.device.type == "cpu":
        import torch

        torch.set_flush_denormal(True)  # random-init conv nets produce denormals: 10x slower on CPU
        threads = cpu_threads(training_args)
        if threads:
            torch.set_num_threads(threads)
    out = Path(training_args.output_dir)
    if _is_main(training_args):
        save_args(out / "args.yaml", model_args, data_args, training_args)
    push, training_args.push_to_hub = training_args.push_to_hub, False  # one push at the end, card included

    # 2. last checkpoint (automatic resume)
    checkpoint = find_checkpoint(training_args)

    # 3. pretrained weights must be there before any data work: fail in seconds, never fall back to random
    name = model_args.model_name_or_path
    if not (name.startswith(COMPACT_PREFIX) or Path(name).is_dir()):
        use_offline_mode_if_unreachable()  # an unreachable Hub costs ~25 s of retries per call otherwise
    if model_args.init == "pretrained":
        check_pretrained_available(model_args.model_name_or_path, model_args.model_revision)
        check_overrides_keep_shapes(model_args.model_name_or_path, model_args.config_overrides, model_args.model_revision)

    # 4. data (class names come from its ClassLabel), 5. model + processor, then the transforms they define
    data = load_training_data(data_args)
    calibration_plan = hold_out_calibration(data, data_args, training_args.seed)
    logger.info("calibration: %s", calibration_plan)
    set_seed(training_args.seed)  # the same initial weights whatever the data step drew
    source = model_args.model_name_or_path
    model, processor = build_classifier(
        source, data.labels, model_args.init, model_args.config_overrides, model_args.bn_momentum, model_args.model_revision
    )
    train_tf = attach_transforms(data, data_args, DataConfig.from_processor(processor), training_args.data_seed or training_args.seed)
    logger.info(
        "model %s (init=%s, %.2f M parameters), %d classes: %s",
        source, model_args.init, sum(p.numel() for p in model.parameters()) / 1e6, len(data.labels), data.labels,
    )

    # 6. Trainer (class imbalance: weighted loss or balanced sampler)
    from ..metrics import compute_metrics

    loss_func = None
    if data_args.class_balance == "weighted_loss":
        loss_func = WeightedLoss(class_weights(data.train_counts), training_args.label_smoothing_factor)
    trainer = MineralTrainer(
        model=model,
        args=training_args,
        data_collator=collate,
        train_dataset=data.train,
        eval_dataset=data.eval,
        processing_class=processor,
        compute_metrics=counted(compute_metrics),
        compute_loss_func=loss_func,
        train_labels=data.train_label_ids,
        balanced=data_args.class_balance == "sampler",
        epoch_aware=[train_tf],
        callbacks=callbacks,
    )

    if data_args.augment and data_args.photo_view > 0:  # the Predictor then averages raw + normalised views
        from ..predict import PHOTO_VIEWS_ATTR

        setattr(model.config, PHOTO_VIEWS_ATTR, True)

    # 7. train, resuming from the checkpoint if there is one
    train_result = trainer.train(resume_from_checkpoint=checkpoint)
    metrics = dict(train_result.metrics)
    metrics["train_samples"] = len(data.train)
    trainer.save_model()  # model.safetensors + config.json (id2label) + preprocessor_config.json
    trainer.log_metrics("train", metrics)
    trainer.save_metrics("train", metrics)
    trainer.save_state()

    # 8. validation metrics, gathered over all processes by the Trainer's eval loop
    if data.eval is not None:
        eval_metrics = trainer.evaluate()
        eval_metrics["eval_samples"] = len(data.eval)
        trainer.log_metrics("eval", eval_metrics)
        trainer.save_metrics("validation", eval_metrics)  # not eval_results.json: the test report owns that name
    if data.test is not None:
        test_metrics = trainer.evaluate(data.test, metric_key_prefix="test")
        test_metrics["test_samples"] = len(data.test)
        trainer.log_metrics("test", test_metrics)
        trainer.save_metrics("test", test_metrics)

    if not _is_main(training_args):
        return {}  # the main process writes all_results.json (no barrier): reading it here would race
    results: dict[str, Any] = json.loads((out / "all_results.json").read_text()) if (out / "all_results.json").exists() else {}

    # 9. plots, the full test report (per-class, confusion matrix, ECE) - main process only
    from ..plots import plot_training_curves

    plot_training_curves(
        trainer.state.log_history, out / "training_curves.png", title=f"Training curves: {out.name}", synthetic=data.synthetic
    )
    calibration = None
    if data.calibration is not None:  # fitted before the test report, on groups that did not pick the checkpoint
        from ..calibration import calibrate_split

        calibration = calibrate_split(
            out, data.calibration, batch_size=training_args.per_device_eval_batch_size, fitted_on=calibration_plan,
            ood_fit=data.raw[data_args.train_split], ood_method=data_args.ood_method,
        )
        results.update({f"calibration_{k}": calibration[k] for k in ("temperature", "unknown_threshold", "ece_before", "ece_after")})
    else:  # stale files from an earlier run must not calibrate this model
        from ..openset import OOD_FILE

        for stale in (out / "calibration.json", out / OOD_FILE):
            if stale.exists():
                logger.warning("removing %s: this run is not calibrated", stale)
                stale.unlink()
    report = None
    if data_args.test_split is not None:
        from ..evaluation import evaluate_and_report, summary_line

        report_dir = Path(data_args.report_dir or out)
        report = evaluate_and_report(
            str(out), data.raw, data_args.test_split, report_dir,
            batch_size=training_args.per_device_eval_batch_size, max_samples=data_args.max_eval_samples,
            synthetic=data.synthetic or None, progress=not training_args.disable_tqdm,
        )
        if report_dir.resolve() != out.resolve():  # the card links these images next to README.md
            for name in ("confusion_matrix.png", "reliability.png", "per_class.md", "eval_results.json", "predictions.csv"):
                if (report_dir / name).exists():
                    shutil.copy2(report_dir / name, out / name)
        logger.info("test report: %s", summary_line(report))
        results.update({f"test_report_{k}": report[k] for k in ("accuracy", "macro_f1", "ece", "ece_uncalibrated") if k in report})

    # 10. all_results.json
    results["train_wall_seconds"] = round(time.perf_counter() - t_start, 1)
    (out / "all_results.json").write_text(json.dumps(results, indent=2, sort_keys=True) + "\n")

    # 11. model card (README.md) from the template, then 12. push
    from ..model_card import hyperparameters_from_args, write_model_card

    sizes = {name: len(split) for name, split in data.raw.items()}
    write_model_card(
        out,
        eval_results=report,
        base_model=source,
        init=model_args.init,
        dataset_id=data_args.dataset_name,
        dataset_sizes=sizes,
        synthetic=data.synthetic,
        hyperparameters=hyperparameters_from_args(
            training_args, {**_card_extras(model_args, data_args), "weights": _init_note(trainer.model, model_args.init)}
        ),
        training=_card_training(trainer, metrics, training_args),
        repo_id=training_args.hub_model_id if push else None,
    )
    if push:
        url = _push(str(out), training_args)
        results["hub_url"] = str(url)
        logger.info("pushed to the Hub: %s", url)
    return results


def _card_extras(model_args: ModelArguments, data_args: DataArguments) -> dict[str, Any]:
    extras = {"init": model_args.init, "class_balance": data_args.class_balance}
    if data_args.augment:
        extras["augmentation"] = (
            f"random resized crop (scale {data_args.crop_scale_min}-1), flips, 90-degree turns, "
            f"+-{data_args.rotation_degrees:g} deg rotation, colour jitter {data_args.color_jitter:g}, "
            f"random erasing p={data_args.random_erasing:g}"
        )
    else:
        extras["augmentation"] = "none"
    if model_args.config_overrides:
        extras["config_overrides"] = model_args.config_overrides
    return extras


def _init_note(model: Any, init: str) -> str:
    """What the card says about initialisation: checked, not assumed (see ``modeling.check_only_head_is_new``)."""
    if init != "pretrained":
        return "random (scratch)"
    fresh = getattr(model, "hf_minerals_new_tensors", None)
    return "pretrained; newly initialised: " + (", ".join(fresh) if fresh else "nothing")


def _card_training(trainer: MineralTrainer, metrics: dict[str, Any], args: TrainingArguments) -> dict[str, Any]:
    state = trainer.state
    facts = {
        "optimizer steps": state.global_step,
        "epochs": round(float(state.epoch or 0), 2),
        "train runtime (s)": round(float(metrics.get("train_runtime", 0.0)), 1),
        "processes": args.world_size,
        "device": str(args.device),
    }
    if state.best_metric is not None:
        facts["best eval metric"] = round(float(state.best_metric), 4)
    return facts


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """``scripts/train.py`` / ``hf-minerals train``: parse, run, report where things went."""
    argv = sys.argv[1:] if argv is None else argv
    try:
        model_args, data_args, training_args = parse_args(argv)
        results = run_training(model_args, data_args, training_args)
    except (ConfigError, WeightsUnavailableError, TrainingDataError) as exc:
        sys.exit(f"error: {exc}")
    if training_args.process_index == 0:
        print(f"model, card and results in {training_args.output_dir}/")
        if "test_accuracy" in results:
            print(f"test accuracy: {results['test_accuracy']:.4f}")
    return results
