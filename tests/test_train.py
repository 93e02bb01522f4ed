"""Training: config parsing, augmentation, model building, the Trainer run, resume, BatchNorm, offline errors.

Tiny models (tests/tiny_models.py) and a tiny 3-mineral data set built here; everything offline.
"""

from __future__ import annotations

import copy
import json
import shutil
import time
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from PIL import Image

from hf_minerals.preprocessing import AugmentConfig, DataConfig, eval_transform, train_transform
from hf_minerals.training.config import ConfigError, parse_args, save_args

REPO = Path(__file__).resolve().parent.parent
MINERALS = ("chalcopyrite", "galena", "pyrite")
COLOURS = np.array([[188, 176, 143], [176, 174, 186], [200, 189, 178]], dtype=float)  # MINERAL_OPTICS.md


def make_dataset(out: Path, sizes=(24, 12, 12), side: int = 40, seed: int = 0) -> Path:
    """A DatasetDict on disk with the project's features: flat mineral colours + noise + exposure changes."""
    from datasets import ClassLabel, Dataset, DatasetDict, Features, Value
    from datasets import Image as ImageFeature

    rng = np.random.default_rng(seed)
    feats = Features({"image": ImageFeature(), "label": ClassLabel(names=list(MINERALS)), "synthetic": Value("bool")})
    parts = {}
    for split, n in zip(("train", "validation", "test"), sizes):
        labels = [i % len(MINERALS) for i in range(n)]
        images = [
            Image.fromarray((COLOURS[c] * rng.uniform(0.9, 1.1) + rng.normal(0, 10, (side, side, 3))).clip(0, 255).astype(np.uint8))
            for c in labels
        ]
        parts[split] = Dataset.from_dict({"image": images, "label": labels, "synthetic": [True] * n}, features=feats)
    DatasetDict(parts).save_to_disk(str(out))
    return out


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    return make_dataset(tmp_path_factory.mktemp("train-data") / "ds")


def _args(model: Path | str, data: Path, out: Path, *extra: str) -> list[str]:
    return [
        "--model_name_or_path", str(model), "--dataset_name", str(data), "--output_dir", str(out),
        "--per_device_train_batch_size", "8", "--per_device_eval_batch_size", "8", "--report_to", "none",
        "--disable_tqdm", "true", "--dataloader_pin_memory", "false", *extra,
    ]


# -- configuration --------------------------------------------------------------------------------------------


def test_recipe_then_cli_overrides(tmp_path):
    recipe = tmp_path / "r.yaml"
    recipe.write_text(
        "model_name_or_path: compact:swin\ninit: scratch\nconfig_overrides: {embed_dim: 16}\n"
        "dataset_name: data\nlearning_rate: 5e-4\nnum_train_epochs: 3\ncolor_jitter: 0.05\noutput_dir: out\n"
    )
    model_args, data_args, training_args = parse_args(["--config", str(recipe), "--num_train_epochs", "2", "--color_jitter", "0.2"])
    assert (model_args.model_name_or_path, model_args.init) == ("compact:swin", "scratch")
    assert json.loads(model_args.config_overrides) == {"embed_dim": 16}
    assert training_args.learning_rate == 5e-4  # YAML's "5e-4" string typed by the parser
    assert training_args.num_train_epochs == 2 and data_args.color_jitter == 0.2  # CLI wins
    assert training_args.remove_unused_columns is False

    saved = save_args(tmp_path / "args.yaml", model_args, data_args, training_args)
    again = parse_args(["--config", str(saved)])  # args.yaml repeats the run
    assert again[0] == model_args and again[1] == data_args
    assert again[2].to_dict() == training_args.to_dict()


@pytest.mark.parametrize(
    "where, text, argv, hint",
    [
        ("yaml", "learning_rat: 0.1\n", [], "learning_rate"),
        ("yaml", "colour_jitter: 0.1\n", [], "color_jitter"),
        ("cli", "", ["--num_train_epoch", "3"], "--num_train_epochs"),
        ("cli", "", ["--num-train-epochs", "3"], "--num_train_epochs"),  # one spelling: underscores
        ("cli", "", ["--lr", "3"], None),
    ],
)
def test_unknown_keys_are_rejected(tmp_path, where, text, argv, hint):
    recipe = tmp_path / "r.yaml"
    recipe.write_text("output_dir: out\n" + text)
    with pytest.raises(ConfigError, match="unknown") as err:
        parse_args(["--config", str(recipe), *argv])
    if hint:
        assert f"did you mean {hint}" in str(err.value)


def test_bad_values_are_rejected(tmp_path):
    with pytest.raises(ConfigError, match="init must be"):
        recipe = tmp_path / "r.yaml"
        recipe.write_text("init: pretraind\n")
        parse_args(["--config", str(recipe)])
    with pytest.raises(ConfigError, match="color_jitter"):
        parse_args(["--color_jitter", "1.5"])


def test_shipped_recipes_parse():
    for recipe in sorted((REPO / "recipes").glob("*.yaml")):
        model_args, _, training_args = parse_args(["--config", str(recipe)])
        assert training_args.output_dir.startswith("outputs/")
    assert parse_args(["--config", str(REPO / "recipes/swin_tiny.yaml")])[0].model_name_or_path == (
        "microsoft/swin-tiny-patch4-window7-224"
    )


@pytest.mark.parametrize("name", ["swin_tiny", "mobilenet_v2", "resnet50"])
def test_paper_recipes_set_the_authors_hyperparameters(name):
    """recipes/paper/*: SGD momentum 0.9, lr 3e-2, 500 warm-up steps then cosine, batch 16, no colour jitter."""
    model_args, data_args, args = parse_args(["--config", str(REPO / "recipes" / "paper" / f"{name}.yaml")])
    ours = parse_args(["--config", str(REPO / "recipes" / f"{name}.yaml")])[0]
    assert model_args.model_name_or_path == ours.model_name_or_path and model_args.init == "pretrained"
    assert args.optim.value == "sgd" and args.optim_args.replace(" ", "") == "momentum=0.9"
    assert args.learning_rate == 3e-2 and args.warmup_steps == 500 and args.lr_scheduler_type.value == "cosine"
    assert args.per_device_train_batch_size == 16 and args.weight_decay == 0.0 and args.label_smoothing_factor == 0.0
    assert data_args.color_jitter == 0.0 and data_args.random_erasing == 0.0 and data_args.class_balance == "none"
    assert args.output_dir == f"outputs/paper/{name}"


# -- augmentation ---------------------------------------------------------------------------------------------


def test_train_transform_geometry_and_determinism():
    cfg = DataConfig(crop=(48, 48))
    rng = np.random.default_rng(0)
    images = [Image.fromarray(rng.integers(0, 255, (60 + 7 * i, 80, 3), dtype=np.uint8)) for i in range(4)]
    a = train_transform(images, cfg, generator=torch.Generator().manual_seed(1))
    b = train_transform(images, cfg, generator=torch.Generator().manual_seed(1))
    c = train_transform(images, cfg, generator=torch.Generator().manual_seed(2))
    assert a.shape == (4, 3, 48, 48) and a.dtype == torch.float32
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert torch.equal(eval_transform(images, cfg), eval_transform(images, cfg))


def test_colour_jitter_is_modest_and_optional():
    """Colour is diagnostic: the photometric jitter (linear light, docs/training.md) moves exposure freely but
    shifts a flat patch's chromaticity only within the white-balance range; all of it can be turned off."""
    from hf_minerals.preprocessing import srgb_to_linear

    cfg = DataConfig(crop=(32, 32))
    flat = [Image.fromarray(np.full((32, 32, 3), COLOURS[0], dtype=np.uint8))]
    no_geom = dict(scale=(1.0, 1.0), ratio=(1.0, 1.0), rotation=0.0, erasing=0.0)
    off = train_transform(flat, cfg, AugmentConfig(color_jitter=0.0, exposure_ev=0.0, white_balance=0.0, **no_geom),
                          torch.Generator().manual_seed(0))
    assert torch.allclose(off, eval_transform(flat, cfg), atol=1e-4)  # geometry of a flat patch changes nothing
    mean = torch.tensor(cfg.mean).view(3, 1, 1) * 255
    std = torch.tensor(cfg.std).view(3, 1, 1) * 255
    lin0 = srgb_to_linear(torch.tensor(COLOURS[0], dtype=torch.float32))
    chroma0 = torch.log(lin0 / lin0.mean())
    for seed in range(20):
        out = train_transform(flat, cfg, AugmentConfig(**no_geom), torch.Generator().manual_seed(seed))[0]
        lin = srgb_to_linear((out * std + mean).mean((1, 2)))
        if lin.max() < 0.98:  # unclipped: chromaticity moves by at most the white-balance and chroma jitter
            assert (torch.log(lin / lin.mean()) - chroma0).abs().max() < 0.35


def test_jittered_chalcopyrite_stays_nearer_chalcopyrite_than_pyrite():
    """The claim colour-preserving augmentation must keep: a jittered chalcopyrite grain is still read as
    chalcopyrite, not pyrite, draw after draw. Lamp colour and exposure are *meant* to vary (labs differ), so
    what must survive is the colour a petrographer reads - the grain relative to the gangue beside it in
    the same photo (the photo-relative view the model also sees). Absolute chromaticity does not survive a
    +-0.15 white balance, by design: the lamp alone moves it about as far as chalcopyrite is from pyrite."""
    from hf_minerals.preprocessing import srgb_to_linear

    cfg = DataConfig(crop=(32, 32))
    gangue = np.array([72.0, 72.0, 76.0])  # dark, nearly neutral matrix (a few % reflectance)
    patch = np.empty((32, 32, 3), dtype=np.uint8)
    patch[:, :16], patch[:, 16:] = COLOURS[0], gangue  # a chalcopyrite grain beside its gangue
    no_geom = dict(scale=(1.0, 1.0), ratio=(1.0, 1.0), rotation=0.0, erasing=0.0, hflip=0.0, vflip=0.0, rot90=False)
    mean, std = torch.tensor(cfg.mean).view(3, 1, 1) * 255, torch.tensor(cfg.std).view(3, 1, 1) * 255

    def relative_chroma(ore, matrix):
        ratio = srgb_to_linear(torch.as_tensor(ore, dtype=torch.float32)) / srgb_to_linear(
            torch.as_tensor(matrix, dtype=torch.float32))
        return torch.log(ratio / ratio.mean())

    chalcopyrite, pyrite = relative_chroma(COLOURS[0], gangue), relative_chroma(COLOURS[2], gangue)
    aug = AugmentConfig(**no_geom)
    assert aug.white_balance > 0 and aug.exposure_ev > 0 and aug.color_jitter > 0  # the defaults do jitter
    checked = 0
    for seed in range(200):
        out = train_transform([Image.fromarray(patch)], cfg, aug, torch.Generator().manual_seed(seed))[0]
        rgb = out * std + mean
        ore, matrix = rgb[:, 4:-4, 2:12].mean((1, 2)), rgb[:, 4:-4, 20:30].mean((1, 2))
        if srgb_to_linear(ore).max() >= 0.98:  # clipped: chromaticity undefined
            continue
        c = relative_chroma(ore, matrix)
        assert (c - chalcopyrite).norm() < (c - pyrite).norm(), seed
        checked += 1
    assert checked > 150  # most draws are unclipped: the claim is really tested


def test_balanced_sampler_and_class_weights():
    from hf_minerals.training.data import class_weights
    from hf_minerals.training.trainer import BalancedSampler

    labels = [0] * 90 + [1] * 9 + [2] * 1
    sampler = BalancedSampler(labels, seed=3)
    first = list(sampler)
    assert first == list(sampler)  # same epoch, same order (resume, every process)
    sampler.set_epoch(1)
    assert first != list(sampler)
    counts = np.bincount([labels[i] for i in first], minlength=3)
    assert counts.min() > 15  # ~33 each instead of 90/9/1
    w = class_weights(np.array([90, 9, 1, 0]))
    assert w[3] == 0 and float((w[:3] * torch.tensor([90.0, 9, 1])).sum()) == pytest.approx(100.0)


# -- models ---------------------------------------------------------------------------------------------------


def test_offline_pretrained_error_is_fast_and_clear(tmp_path, monkeypatch, capsys):
    from hf_minerals.training import main

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    t0 = time.perf_counter()
    with pytest.raises(SystemExit) as exit_:
        main(["--config", str(REPO / "recipes/swin_tiny.yaml"), "--output_dir", str(tmp_path / "out")])
    elapsed = time.perf_counter() - t0
    message = str(exit_.value.code)
    assert "microsoft/swin-tiny-patch4-window7-224" in message
    assert "--init scratch" in message and "local folder" in message
    assert elapsed < 10, f"took {elapsed:.1f} s"
    assert not (tmp_path / "out" / "model.safetensors").exists()


def test_unreachable_hub_switches_to_cache_only_and_fails_clearly(tmp_path, monkeypatch):
    """No HF_HUB_OFFLINE, but the endpoint is a closed port: no 25 s of retries, the same clear error."""
    import socket

    import huggingface_hub

    from hf_minerals.modeling import (
        WeightsUnavailableError,
        check_pretrained_available,
        use_offline_mode_if_unreachable,
    )

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setattr(huggingface_hub.constants, "ENDPOINT", f"http://127.0.0.1:{port}")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    assert use_offline_mode_if_unreachable(timeout=1.0) is True
    assert huggingface_hub.is_offline_mode()
    with pytest.raises(WeightsUnavailableError, match="--init scratch"):
        check_pretrained_available("microsoft/swin-tiny-patch4-window7-224")


def test_scratch_offline_uses_bundled_architecture_and_compact_has_no_weights():
    from hf_minerals.modeling import WeightsUnavailableError, build_classifier

    model, processor = build_classifier("microsoft/resnet-50", list(MINERALS), init="scratch")
    assert model.config.hidden_sizes == [256, 512, 1024, 2048] and model.config.layer_type == "bottleneck"
    assert model.config.id2label == dict(enumerate(MINERALS))
    assert DataConfig.from_processor(processor).crop == (224, 224)
    with pytest.raises(WeightsUnavailableError, match="no pretrained weights"):
        build_classifier("compact:swin", list(MINERALS), init="pretrained")
    with pytest.raises(WeightsUnavailableError, match="nobody/nothing"):
        build_classifier("nobody/nothing", list(MINERALS), init="scratch")
    with pytest.raises(ValueError, match="did you mean embed_dim"):
        build_classifier("compact:swin", list(MINERALS), init="scratch", config_overrides="{embed_dims: 8}")


def test_pretrained_local_folder_replaces_head(tiny_model_factory):
    from hf_minerals.modeling import build_classifier

    folder = tiny_model_factory("swin")  # 5-class tiny model "pretrained" weights
    model, _ = build_classifier(str(folder), list(MINERALS), init="pretrained")
    assert model.config.num_labels == 3 and model.config.label2id == {n: i for i, n in enumerate(MINERALS)}
    scratch, _ = build_classifier(str(folder), list(MINERALS), init="scratch")
    from transformers import AutoModelForImageClassification

    original = AutoModelForImageClassification.from_pretrained(folder)
    key = "swin.embeddings.patch_embeddings.projection.weight"
    assert torch.equal(model.state_dict()[key], original.state_dict()[key])  # backbone weights kept
    assert not torch.equal(scratch.state_dict()[key], original.state_dict()[key])  # scratch: random


def test_pretrained_refuses_reinitialised_backbone_tensors(tiny_model_factory, tmp_path, monkeypatch):
    """`init: pretrained` with anything beyond the head newly initialised is an error naming the tensors."""
    import shutil

    from safetensors.torch import load_file, save_file

    from hf_minerals import modeling
    from hf_minerals.modeling import NotPretrainedError, build_classifier

    # a checkpoint that lacks two backbone tensors: they would silently start random
    broken = tmp_path / "broken"
    shutil.copytree(tiny_model_factory("resnet"), broken)
    weights = load_file(broken / "model.safetensors")
    dropped = sorted(k for k in weights if "embedder" in k and k.endswith(("convolution.weight", "normalization.weight")))
    assert dropped
    save_file({k: v for k, v in weights.items() if k not in dropped}, broken / "model.safetensors", metadata={"format": "pt"})
    with pytest.raises(NotPretrainedError, match="backbone tensor") as err:
        build_classifier(str(broken), list(MINERALS), init="pretrained")
    assert all(name.split(".", 1)[1] in str(err.value) for name in dropped)

    # a shape-changing override is refused up front, before any weights are read
    def no_weights(*args, **kwargs):
        raise AssertionError("weights were loaded before the override check")

    monkeypatch.setattr(modeling, "load_classifier", no_weights)
    with pytest.raises(NotPretrainedError, match="embed_dim") as err:
        build_classifier(str(tiny_model_factory("swin")), list(MINERALS), init="pretrained", config_overrides="{embed_dim: 24}")
    assert "patch_embeddings.projection.weight" in str(err.value)
    monkeypatch.undo()
    # shape-neutral overrides (regularisation) are fine, and the head is all that is new
    model, _ = build_classifier(str(tiny_model_factory("swin")), list(MINERALS), init="pretrained",
                                config_overrides="{drop_path_rate: 0.2}")
    assert model.hf_minerals_new_tensors == ["classifier.bias", "classifier.weight"]


# -- a full run -----------------------------------------------------------------------------------------------


def test_train_cli_end_to_end(tiny_model_factory, dataset, tmp_path):
    """YAML + overrides -> model folder with id2label, safetensors, processor, plots, card; pipeline works."""
    from transformers import pipeline

    from hf_minerals.predict import Predictor
    from hf_minerals.training import main

    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(
        "init: pretrained\nnum_train_epochs: 5\nlearning_rate: 2.0e-3\neval_strategy: epoch\n"
        "save_strategy: epoch\nlogging_strategy: epoch\nsave_total_limit: 1\nclass_balance: weighted_loss\n"
    )
    out = tmp_path / "model"
    argv = ["--config", str(recipe), *_args(tiny_model_factory("swin"), dataset, out), "--num_train_epochs", "2"]
    results = main(argv)

    config = json.loads((out / "config.json").read_text())
    assert config["id2label"] == {str(i): n for i, n in enumerate(MINERALS)}
    assert config["label2id"] == {n: i for i, n in enumerate(MINERALS)}
    assert (out / "model.safetensors").exists() and not list(out.glob("pytorch_model*.bin"))
    # the weights get the user's normal permissions, like config.json (safetensors alone writes 0600)
    assert (out / "model.safetensors").stat().st_mode & 0o777 == (out / "config.json").stat().st_mode & 0o777
    for name in ("preprocessor_config.json", "all_results.json", "training_curves.png", "confusion_matrix.png",
                 "eval_results.json", "args.yaml", "README.md"):
        assert (out / name).exists(), name
    assert yaml.safe_load((out / "args.yaml").read_text())["num_train_epochs"] == 2  # CLI beat the recipe
    meta = yaml.safe_load((out / "README.md").read_text().split("---\n")[1])
    assert meta["pipeline_tag"] == "image-classification" and meta["model-index"][0]["results"]

    all_results = json.loads((out / "all_results.json").read_text())
    assert all_results["epoch"] == 2.0 and all_results["test_n"] == 12
    # validation split by group: one part chose the checkpoint, the other calibrated; the report came after
    calibration = json.loads((out / "calibration.json").read_text())
    assert all_results["eval_n"] + calibration["n_validation"] == 12 and 0 < calibration["n_validation"] < 12
    # the open-set score: distance on train, threshold on the same held-out calibration groups
    assert calibration["ood"]["distance_fitted_on"]["split"] == "train"
    assert calibration["ood"]["threshold_fitted_on"] == {"split": "calibration", "n": calibration["n_validation"]}
    report = json.loads((out / "eval_results.json").read_text())
    assert report["calibration"] == calibration and report["temperature"] == calibration["temperature"]
    assert report["ece_calibrated"] == report["ece"] and report["ece_uncalibrated"] >= 0
    lo, hi = report["ci"]["accuracy"]
    assert lo <= report["accuracy"] <= hi and report["ci"]["resampled_by"] == "image"  # no group column here
    card = (out / "README.md").read_text()
    assert "95 % CI" in card and "after calibration" in card and "before calibration" in card
    assert "Accuracy (95% CI" in str(meta["model-index"])
    # Trainer's eval loop and the Predictor-based report see the same deterministic preprocessing
    assert all_results["test_accuracy"] == pytest.approx(all_results["test_report_accuracy"])
    assert results["test_accuracy"] == all_results["test_accuracy"]

    from datasets import load_from_disk

    images = load_from_disk(str(dataset))["test"]["image"][:4]
    predictor = Predictor.from_pretrained(out)
    assert np.array_equal(predictor.predict_proba(images), predictor.predict_proba(images))  # deterministic eval
    clf = pipeline("image-classification", model=str(out))
    assert {p["label"] for p in clf(images[0], top_k=3)} == set(MINERALS)


class KillAt:
    """A TrainerCallback that 'kills' the run (KeyboardInterrupt, nothing saved) after ``step`` steps."""

    def __new__(cls, step: int):
        from transformers import TrainerCallback

        class _Kill(TrainerCallback):
            def on_step_end(self, args, state, control, **kwargs):
                if state.global_step == step:
                    raise KeyboardInterrupt(f"killed at step {step}")

        return _Kill()


def test_killed_run_resumes_to_the_same_result(tiny_model_factory, dataset, tmp_path):
    """Killed mid-epoch after a checkpoint, restarted with the same command: identical weights and losses.

    Covers model weights (Swin's renamed keys), optimizer, scheduler, data order (balanced sampler) and
    the augmentation randomness (seeded per sample and epoch), plus drop-path RNG.
    """
    from safetensors.torch import load_file

    from hf_minerals.training import run_training

    def argv(out: Path) -> list[str]:
        return _args(
            tiny_model_factory("swin"), dataset, out, "--init", "scratch", "--max_steps", "7", "--save_steps", "2",
            "--logging_steps", "1", "--eval_split", "", "--test_split", "", "--learning_rate", "2e-3",
            "--class_balance", "sampler", "--seed", "5", "--config_overrides", "{drop_path_rate: 0.2}",
        )

    straight, killed = tmp_path / "straight", tmp_path / "killed"
    run_training(*parse_args(argv(straight)))
    with pytest.raises(KeyboardInterrupt):
        run_training(*parse_args(argv(killed)), callbacks=[KillAt(5)])
    assert sorted(p.name for p in killed.glob("checkpoint-*")) == ["checkpoint-2", "checkpoint-4"]
    assert not (killed / "model.safetensors").exists()
    run_training(*parse_args(argv(killed)))  # same command: resumes from checkpoint-4 (3 batches/epoch)

    a, b = load_file(straight / "model.safetensors"), load_file(killed / "model.safetensors")
    assert a.keys() == b.keys()
    for key in a:
        assert torch.allclose(a[key], b[key], atol=1e-6), key

    def losses(folder: Path) -> list[float]:
        history = json.loads((folder / "trainer_state.json").read_text())["log_history"]
        return [h["loss"] for h in history if "loss" in h]

    assert len(losses(straight)) == 7 and losses(killed)[-3:] == pytest.approx(losses(straight)[-3:], abs=1e-6)


def _recalibrated(model: torch.nn.Module, pixel_values: torch.Tensor) -> torch.nn.Module:
    """The same weights with BatchNorm statistics recomputed exactly on ``pixel_values`` (the manual reference)."""
    ref = copy.deepcopy(model)
    for m in ref.modules():
        if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
            m.reset_running_stats()
            m.momentum = None  # cumulative average
    ref.train()
    with torch.no_grad():
        ref(pixel_values=pixel_values)
    return ref.eval()


def test_mobilenet_v2_eval_is_stable_after_training(tiny_model_factory, dataset, tmp_path):
    """transformers' MobileNetV2 builds BatchNorm with momentum 0.997: running stats = the last batch's."""
    from datasets import load_from_disk
    from transformers import AutoModelForImageClassification

    from hf_minerals.modeling import build_classifier, load_processor
    from hf_minerals.training import run_training

    folder = tiny_model_factory("mobilenet_v2", image_size=48)  # depthwise convs are slow on CPU: keep it small
    out = tmp_path / "mnv2"
    run_training(*parse_args(_args(
        folder, dataset, out, "--max_steps", "4", "--max_train_samples", "17", "--learning_rate", "1e-3",
        "--augment", "false", "--eval_split", "", "--test_split", "", "--save_strategy", "no",
    )))
    ds = load_from_disk(str(dataset))
    cfg = DataConfig.from_processor(load_processor(out))
    train_x = eval_transform(ds["train"]["image"][:17], cfg)
    test_x = eval_transform(ds["test"]["image"], cfg)

    fixed, _ = build_classifier(str(out), list(MINERALS), init="pretrained")  # what training uses
    raw = AutoModelForImageClassification.from_pretrained(out)  # transformers as is
    assert {m.momentum for m in fixed.modules() if isinstance(m, torch.nn.BatchNorm2d)} == {0.1}
    assert {m.momentum for m in raw.modules() if isinstance(m, torch.nn.BatchNorm2d)} == {0.997}

    def after_training(model: torch.nn.Module, order: torch.Tensor) -> torch.Tensor:
        """Eval logits after what training does to the BN statistics: 4 epochs of batches 8, 8, 1."""
        model = copy.deepcopy(model).train()
        with torch.no_grad():
            for _ in range(4):
                for batch in train_x[order].split(8):
                    model(pixel_values=batch)
        model.eval()
        with torch.no_grad():
            once, twice = model(pixel_values=test_x).logits, model(pixel_values=test_x).logits
            one_by_one = torch.cat([model(pixel_values=x[None]).logits for x in test_x])
        assert torch.equal(once, twice)
        assert torch.allclose(once, one_by_one, atol=1e-4)  # eval mode: running stats, not the batch's
        return once

    # Stable eval means the answer does not hinge on which image happened to come last in training.
    # Two orders of the same images, differing only in the last (single-image) batch: with TF's 0.997 the
    # running statistics become that one image's; with 0.1 it weighs a tenth.
    first_last, other_last = torch.arange(len(train_x)), torch.arange(len(train_x)).roll(1)
    changes = {}
    for name, model in (("fixed", fixed), ("raw", raw)):
        a, b = after_training(model, first_last), after_training(model, other_last)
        changes[name] = float((a - b).abs().max() / b.abs().max())
    assert changes["fixed"] < 0.5 * changes["raw"], changes


def test_bad_data_gives_clear_errors(tmp_path, dataset):
    from hf_minerals.training import main

    with pytest.raises(SystemExit, match="no 'valid' split"):
        main(_args("compact:resnet", dataset, tmp_path / "o", "--init", "scratch", "--eval_split", "valid"))
    with pytest.raises(SystemExit, match="no data set given"):
        main(["--model_name_or_path", "compact:resnet", "--init", "scratch", "--output_dir", str(tmp_path / "o")])
    shutil.rmtree(tmp_path / "o", ignore_errors=True)


def test_cpu_threads_leave_cores_to_the_data_loader_workers(monkeypatch):
    """Torch threads = cores left after the DataLoader workers, per process; OMP_NUM_THREADS wins. (With the
    default - every core - a busy 2-core box ran the offline recipe at 0.1 instead of 5 steps/s.)"""
    from types import SimpleNamespace

    import hf_minerals.training.run as run

    monkeypatch.setattr(run.os, "sched_getaffinity", lambda _: {0, 1}, raising=False)
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.delenv("LOCAL_WORLD_SIZE", raising=False)
    assert run.cpu_threads(SimpleNamespace(dataloader_num_workers=1)) == 1
    assert run.cpu_threads(SimpleNamespace(dataloader_num_workers=0)) == 2
    assert run.cpu_threads(SimpleNamespace(dataloader_num_workers=4)) == 1  # never below one
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "2")
    assert run.cpu_threads(SimpleNamespace(dataloader_num_workers=0)) == 1
    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    assert run.cpu_threads(SimpleNamespace(dataloader_num_workers=0)) is None  # the user's setting stands
