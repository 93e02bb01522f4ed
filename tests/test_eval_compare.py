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
    lo, hi = scratch["ci"]["accuracy"]
    assert lo <= scratch["accuracy"] <= hi and f"{scratch['accuracy']:.3f} [{lo:.3f}, {hi:.3f}]" in md
    assert result["differences"] == []  # one finished row: nothing to compare
    assert (out / "comparison.png").stat().st_size > 0


def test_compare_plan_rejects_unknown_recipe():
    from hf_minerals.comparison import plan_runs

    both = plan_runs(["paper/swin_tiny", "swin_tiny"], ["scratch"], variant="compact")
    assert [r["recipe"] for r in both] == ["paper-swin_tiny", "swin_tiny"]  # distinct rows and output folders
    assert both[0]["model"] == both[1]["model"] == "compact:swin"

    with pytest.raises(FileNotFoundError, match="no recipe 'nope'"):
        plan_runs(["nope"], ["scratch"])
    with pytest.raises(ValueError, match="variant"):
        plan_runs([], ["scratch"], variant="huge")


def _predictions(path, labels, predicted, groups):
    import csv

    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["index", "source_path", "group", "label", "predicted", "confidence", "correct"])
        for i, (t, p, g) in enumerate(zip(labels, predicted, groups)):
            w.writerow([i, f"img{i}.png", g, t, p, "0.9", int(t == p)])
    return str(path)


def test_compare_marks_differences_larger_than_the_noise(tmp_path):
    """Paired bootstrap by group on the same test images: a clear gap is marked, a near-tie is not."""
    from hf_minerals.comparison import comparison_markdown, paired_differences

    rng = np.random.default_rng(0)
    labels = [NAMES[i % 5] for i in range(200)]
    groups = [f"photo{i // 4}" for i in range(200)]
    good = [t if rng.random() < 0.95 else NAMES[(NAMES.index(t) + 1) % 5] for t in labels]
    twin = [t if rng.random() < 0.95 else NAMES[(NAMES.index(t) + 2) % 5] for t in labels]  # as good, other errors
    poor = [t if rng.random() < 0.5 else NAMES[(NAMES.index(t) + 1) % 5] for t in labels]
    rows = [{"recipe": name, "init": "pretrained", "status": "ok", "predictions": _predictions(tmp_path / f"{name}.csv", labels, p, groups)}
            for name, p in (("good", good), ("twin", twin), ("poor", poor))]
    diffs = {(d["a"].split()[0], d["b"].split()[0]): d for d in paired_differences(rows)}
    assert diffs[("good", "poor")]["accuracy"]["beyond_noise"] and diffs[("good", "poor")]["resampled_by"] == "group"
    assert not diffs[("good", "twin")]["accuracy"]["beyond_noise"]
    md = comparison_markdown({"rows": [], "dataset": "d", "synthetic": False, "train_args": [], "differences": list(diffs.values()),
                              "machine": {"torch_threads": 1}})
    assert "larger than the noise" in md and "within noise" in md
    other = [{**rows[0]}, {**rows[2], "predictions": _predictions(tmp_path / "short.csv", labels[:-1], poor[:-1], groups[:-1])}]
    with pytest.raises(ValueError, match="same images"):
        paired_differences(other)
