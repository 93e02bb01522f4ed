"""scripts/compare.py offline on tiny settings: compact random-init rows say so, pretrained rows are not faked."""

from __future__ import annotations

import json

import numpy as np
import pytest
import yaml

from hf_minerals.comparison import OFFLINE_NOTE

NAMES = ["arsenopyrite", "chalcopyrite", "gold", "pyrite", "stibnite"]
RECIPE = """model_name_or_path: {model}
learning_rate: 0.001
per_device_train_batch_size: 4
per_device_eval_batch_size: 8
eval_strategy: 'no'
save_strategy: 'no'
logging_steps: 1
seed: 0
"""


@pytest.fixture(scope="module")
def tiny_splits(tmp_path_factory):
    import datasets
    from PIL import Image

    rng = np.random.default_rng(0)
    colours = [(200, 200, 210), (220, 200, 60), (250, 220, 40), (230, 220, 150), (150, 150, 160)]

    def split(n: int) -> datasets.Dataset:
        images = [Image.fromarray(np.clip(rng.normal(colours[i % 5], 20, (40, 40, 3)), 0, 255).astype(np.uint8))
                  for i in range(n)]
        feats = datasets.Features({"image": datasets.Image(), "label": datasets.ClassLabel(names=NAMES),
                                   "synthetic": datasets.Value("bool")})
        return datasets.Dataset.from_dict({"image": images, "label": [i % 5 for i in range(n)], "synthetic": [True] * n},
                                          features=feats)

    out = tmp_path_factory.mktemp("cmp") / "ds"
    datasets.DatasetDict(train=split(10), validation=split(5), test=split(5)).save_to_disk(str(out))
    return out


def test_compare_offline_compact_rows_and_no_fake_pretrained(tiny_splits, tmp_path):
    from hf_minerals.cli import main

    recipe = tmp_path / "swin_tiny.yaml"
    recipe.write_text(RECIPE.format(model="microsoft/swin-tiny-patch4-window7-224"))
    out = tmp_path / "cmp"
    main(["compare", "--recipes", str(recipe), "--init", "pretrained", "scratch", "--dataset", str(tiny_splits),
          "--output_dir", str(out), "--speed_images", "4", "--max_steps", "1", "--eval_split", "", "--disable_tqdm", "true"])
    result = json.loads((out / "comparison.json").read_text())
    args = yaml.safe_load((out / "args.yaml").read_text())  # compare's own and the training flags it handed on
    assert args["init"] == ["pretrained", "scratch"] and args["max_steps"] == "1" and args["eval_split"] == ""
    pre, scratch = result["rows"]
    assert result["hub_offline"] is True and result["synthetic"] is True
    assert scratch["recipe_path"] == str(recipe)  # the recipe given, not recipes/swin_tiny.yaml of the repo
    # the pretrained row is reported as not run, with why - no score under the pretrained name
    assert pre["init"] == "pretrained" and pre["status"] == "not run" and "offline" in pre["note"]
    assert "accuracy" not in pre and not (out / "swin_tiny-pretrained").exists()
    # the scratch row ran the compact variant and says so
    assert scratch["status"] == "ok" and scratch["model"] == "compact:swin" and scratch["note"] == OFFLINE_NOTE
    report = json.loads((out / "swin_tiny-scratch" / "eval_results.json").read_text())
    assert scratch["accuracy"] == report["accuracy"] and scratch["macro_f1"] == report["macro_f1"]
    assert set(scratch["per_class_f1"]) == set(NAMES)
    assert scratch["parameters"] > 0 and scratch["inference_images_per_s"] > 0 and scratch["train_seconds"] > 0
    md = (out / "comparison.md").read_text()
    assert OFFLINE_NOTE in md and "not run" in md and "synthetic" in md
    assert "| swin_tiny (`compact:swin`) | scratch | random init (compact) |" in md
    assert (out / "comparison.png").stat().st_size > 0


def test_compare_plan_rejects_unknown_recipe():
    from hf_minerals.comparison import plan_runs

    with pytest.raises(FileNotFoundError, match="no recipe 'nope'"):
        plan_runs(["nope"], ["scratch"])
    with pytest.raises(ValueError, match="variant"):
        plan_runs([], ["scratch"], variant="huge")
