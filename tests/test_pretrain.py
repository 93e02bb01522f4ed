"""Mineral-pretrained weights: the pretrain command's quick mode writes a folder that init: pretrained fine-tunes."""

from __future__ import annotations

import json
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parent.parent


def test_pretrain_quick_mode_then_finetune_from_it(tmp_path):
    from test_train import _args, make_dataset

    from hf_minerals.predict import PHOTO_VIEWS_ATTR
    from hf_minerals.training import run_training
    from hf_minerals.training.config import parse_args
    from hf_minerals.training.pretrain import main as pretrain_main

    folder = tmp_path / "pre"
    facts = pretrain_main(["--output_dir", str(folder), "--scenes", "32", "--batch_size", "16", "--scene_size", "64",
                           "--image_size", "48", "--log_every", "1"])
    assert facts["scenes"] == 32 and facts["quick_mode"] and facts["synthetic"]
    cfg = json.loads((folder / "config.json").read_text())
    assert len(cfg["id2label"]) == 7 and cfg[PHOTO_VIEWS_ATTR] is True
    card = (folder / "README.md").read_text()
    assert "SYNTHETIC" in card and "Quick mode" in card and "hf-minerals pretrain" in card
    assert (folder / "model.safetensors").exists() and (folder / "args.yaml").exists()

    data = make_dataset(tmp_path / "ds")
    out = tmp_path / "ft"
    run_training(*parse_args(_args(folder, data, out, "--init", "pretrained", "--max_steps", "2", "--eval_split", "",
                                   "--test_split", "", "--save_strategy", "no")))
    ft = json.loads((out / "config.json").read_text())
    assert sorted(ft["id2label"].values()) == ["chalcopyrite", "galena", "pyrite"]  # head replaced for the user's classes


def test_offline_recipe_points_at_the_shipped_pretrained_folder():
    recipe = yaml.safe_load((REPO / "recipes" / "offline.yaml").read_text())
    assert recipe["init"] == "pretrained" and recipe["photo_view"] > 0
    folder = REPO / recipe["model_name_or_path"]
    facts = json.loads((folder / "pretrain_results.json").read_text())
    assert facts["scenes"] >= 20_000 and not facts["quick_mode"]  # the full build, not the smoke test
    assert (folder / "model.safetensors").stat().st_size < 10 * 2**20  # shipped: <= 10 MB
    pre = json.loads((folder / "preprocessor_config.json").read_text())
    assert pre["size"]["shortest_edge"] >= 128  # large enough to keep texture (not 64 px)
