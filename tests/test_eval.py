"""Evaluation: metric modules by path (offline), ECE, evaluate_and_report files + determinism, model card, plots."""

from __future__ import annotations

import json
import socket
import warnings

import numpy as np
import pytest
import yaml

from hf_minerals.metrics import METRIC_NAMES, compute_all, compute_metrics, metric_path

NAMES = ["arsenopyrite", "chalcopyrite", "gold", "pyrite", "stibnite"]


@pytest.fixture
def no_network(monkeypatch):
    """Any attempt to open a connection fails the test."""

    def refuse(self, address, *args, **kwargs):
        raise AssertionError(f"network access attempted: {address}")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", lambda *a, **k: refuse(None, a))


def test_metric_modules_load_by_path_offline_and_match_sklearn(no_network):
    import evaluate
    from sklearn import metrics as skm

    rng = np.random.default_rng(0)
    refs, preds = rng.integers(0, 5, 200), rng.integers(0, 5, 200)
    preds[:5] = 4  # class 4 also predicted; class 0 rows exist
    labels = list(range(5))
    loaded = {name: evaluate.load(str(metric_path(name)), keep_in_memory=True) for name in METRIC_NAMES}
    assert loaded["accuracy"].compute(predictions=preds, references=refs)["accuracy"] == pytest.approx(
        skm.accuracy_score(refs, preds)
    )
    for name, fn in (("precision", skm.precision_score), ("recall", skm.recall_score), ("f1", skm.f1_score)):
        macro = loaded[name].compute(predictions=preds, references=refs, labels=labels)[name]
        assert macro == pytest.approx(fn(refs, preds, average="macro", zero_division=0))
        per = loaded[name].compute(predictions=preds, references=refs, labels=labels, average=None)[name]
        np.testing.assert_allclose(per, fn(refs, preds, average=None, labels=labels, zero_division=0))
    cm = loaded["confusion_matrix"].compute(predictions=preds, references=refs, labels=labels)["confusion_matrix"]
    np.testing.assert_array_equal(cm, skm.confusion_matrix(refs, preds, labels=labels))
    # ours, not the Hub's: zero_division defaults to 0, so a never-predicted class gives 0 without a warning
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out = loaded["precision"].compute(predictions=[0, 0], references=[0, 1], labels=[0, 1], average=None)
    assert out["precision"] == [0.5, 0.0]


def test_unknown_metric_name():
    with pytest.raises(ValueError, match="ships"):
        metric_path("bleu")


def test_ece_hand_example(no_network):
    import evaluate

    probs = np.array(
        [
            [0.90, 0.05, 0.05],  # conf 0.90, correct
            [0.80, 0.10, 0.10],  # conf 0.80, wrong (true 1)
            [0.40, 0.30, 0.30],  # conf 0.40, correct
            [0.20, 0.45, 0.35],  # conf 0.45, wrong (true 2)
        ]
    )
    refs = [0, 1, 0, 2]
    # 2 bins: (0, .5] -> acc .5, conf .425, gap .075 ; (.5, 1] -> acc .5, conf .85, gap .35
    out = evaluate.load(str(metric_path("ece")), keep_in_memory=True).compute(predictions=probs, references=refs, n_bins=2)
    assert out["expected_calibration_error"] == pytest.approx(0.5 * 0.075 + 0.5 * 0.35)
    assert out["maximum_calibration_error"] == pytest.approx(0.35)
    assert out["bin_counts"] == [2, 2]
    assert out["bin_accuracy"] == pytest.approx([0.5, 0.5])
    # a confidence of exactly 0.5 is in the first bin (bins are right-closed), a perfect model has ECE 0
    edge = evaluate.load(str(metric_path("ece")), keep_in_memory=True).compute(
        predictions=[[0.5, 0.5], [1.0, 0.0]], references=[0, 0], n_bins=2
    )
    assert edge["bin_counts"] == [1, 1]
    assert edge["expected_calibration_error"] == pytest.approx(0.5 * 0.5)


def test_compute_metrics_and_compute_all():
    from transformers import EvalPrediction

    logits = np.array([[3.0, 0, 0], [0, 2.0, 0], [0, 0, 1.0], [2.0, 0, 0]])
    labels = np.array([0, 1, 1, 0])
    out = compute_metrics(EvalPrediction(predictions=logits, label_ids=labels))
    assert out == {"accuracy": pytest.approx(0.75), "macro_f1": pytest.approx((1 + 2 / 3 + 0) / 3)}
    probs = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    res = compute_all(labels, probs, ["a", "b", "c"])
    assert res["per_class"]["c"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 0}
    assert res["confusion_matrix"] == [[2, 0, 0], [0, 1, 1], [0, 0, 0]]
    assert res["n"] == 4 and 0 <= res["ece"] <= 1
    with pytest.raises(ValueError, match="probs must be"):
        compute_all(labels, probs[:, :2], ["a", "b", "c"])
    with pytest.raises(ValueError, match="label ids"):
        compute_all([0, 1, 5, 0], probs, ["a", "b", "c"])


# -- evaluate_and_report on a tiny model and a tiny data set -------------------------------------------
@pytest.fixture(scope="module")
def tiny_dataset(tmp_path_factory):
    import datasets
    from PIL import Image

    rng = np.random.default_rng(1)
    # label order deliberately differs from the model's: evaluation must match classes by name
    names = list(reversed(NAMES))
    images = [Image.fromarray(rng.integers(0, 255, (40 + i % 9, 52, 3), dtype=np.uint8)) for i in range(15)]
    images[3] = images[3].convert("L")  # odd mode: must be handled like any upload
    feats = datasets.Features(
        {
            "image": datasets.Image(),
            "label": datasets.ClassLabel(names=names),
            "source_path": datasets.Value("string"),
            "synthetic": datasets.Value("bool"),
        }
    )
    split = datasets.Dataset.from_dict(
        {"image": images, "label": [i % 5 for i in range(15)], "source_path": [f"img_{i}.png" for i in range(15)],
         "synthetic": [True] * 15},
        features=feats,
    )
    out = tmp_path_factory.mktemp("tiny-ds") / "ds"
    datasets.DatasetDict(train=split, test=split).save_to_disk(str(out))
    return out


def test_evaluate_and_report_files_and_determinism(tiny_model_factory, tiny_dataset, tmp_path):
    import csv

    from hf_minerals.evaluation import evaluate_and_report

    model = tiny_model_factory("swin")
    r1 = evaluate_and_report(model, tiny_dataset, "test", tmp_path / "a", batch_size=4, progress=False)
    r2 = evaluate_and_report(model, tiny_dataset, "test", tmp_path / "b", batch_size=4, progress=False)
    for name in ("eval_results.json", "per_class.md", "per_class.csv", "predictions.csv", "confusion_matrix.png", "reliability.png"):
        assert (tmp_path / "a" / name).stat().st_size > 0, name
    j1 = json.loads((tmp_path / "a" / "eval_results.json").read_text())
    j2 = json.loads((tmp_path / "b" / "eval_results.json").read_text())
    assert j1 == j2  # deterministic: two runs write identical files
    assert (tmp_path / "a" / "predictions.csv").read_text() == (tmp_path / "b" / "predictions.csv").read_text()
    assert r1["accuracy"] == r2["accuracy"]
    for key in ("accuracy", "macro_precision", "macro_recall", "macro_f1", "per_class", "confusion_matrix", "ece", "n",
                "model", "dataset", "split"):
        assert key in j1, key
    assert j1["synthetic"] is True and j1["n"] == 15 and j1["split"] == "test"
    assert sorted(j1["per_class"]) == sorted(NAMES)
    assert np.asarray(j1["confusion_matrix"]).sum() == 15
    # the numbers agree with the per-image predictions (true labels mapped by name, not by id)
    rows = list(csv.DictReader((tmp_path / "a" / "predictions.csv").open()))
    assert [r["label"] for r in rows] == [list(reversed(NAMES))[i % 5] for i in range(15)]
    assert j1["accuracy"] == pytest.approx(np.mean([r["label"] == r["predicted"] for r in rows]))
    assert "| **macro average** |" in (tmp_path / "a" / "per_class.md").read_text()


def test_evaluate_errors(tiny_model_factory, tiny_dataset, tmp_path):
    from hf_minerals.evaluation import evaluate_and_report

    model = tiny_model_factory("swin", labels=("pyrite", "gold"))
    with pytest.raises(ValueError, match="does not know"):
        evaluate_and_report(model, tiny_dataset, "test", tmp_path, progress=False)
    with pytest.raises(KeyError, match="no split 'validation'"):
        evaluate_and_report(tiny_model_factory("swin"), tiny_dataset, "validation", tmp_path, progress=False)
    with pytest.raises(FileNotFoundError, match="not a saved data set"):
        evaluate_and_report(tiny_model_factory("swin"), tmp_path, "test", tmp_path, progress=False)
    import datasets

    feats = datasets.Features({"image": datasets.Image(), "label": datasets.ClassLabel(names=NAMES),
                               "source_path": datasets.Value("string")})
    broken = datasets.Dataset.from_dict(
        {"image": [{"bytes": b"not an image", "path": None}], "label": [0], "source_path": ["bad.png"]}, features=feats
    )
    with pytest.raises(ValueError, match="example 0 bad.png .*cannot be read"):
        evaluate_and_report(tiny_model_factory("swin"), broken, "test", tmp_path / "x", progress=False)
    assert not (tmp_path / "x").exists()  # nothing half-written


def test_evaluate_cli(tiny_model_factory, tiny_dataset, tmp_path, capsys):
    from hf_minerals.cli import main

    main(["evaluate", "--model", str(tiny_model_factory("resnet")), "--dataset", str(tiny_dataset), "--output_dir",
          str(tmp_path / "cli"), "--max_samples", "6", "--batch_size", "3"])
    out = capsys.readouterr().out
    assert "accuracy=" in out and "SYNTHETIC" in out
    assert json.loads((tmp_path / "cli" / "eval_results.json").read_text())["n"] == 6
    assert "max_samples: 6" in (tmp_path / "cli" / "args.yaml").read_text()  # resolved arguments, a valid --config


# -- model card ---------------------------------------------------------------------------------------
def _front_matter(text: str) -> dict:
    assert text.startswith("---\n")
    return yaml.safe_load(text.split("---\n")[1])


#: The card's section structure (snapshot): a template edit that drops or reorders a section fails here.
CARD_SECTIONS = ["## Results", "## Data", "## Initialisation", "## Training set-up", "## How to use", "## Limitations",
                 "## Citation"]


def test_model_card_yaml_and_structure(tiny_model_factory, tiny_dataset, tmp_path):
    import shutil

    from huggingface_hub import ModelCard
    from huggingface_hub.repocard_data import model_index_to_eval_results

    from hf_minerals.evaluation import evaluate_and_report
    from hf_minerals.model_card import hyperparameters_from_args, write_model_card

    model = tmp_path / "model"
    shutil.copytree(tiny_model_factory("swin"), model)
    results = evaluate_and_report(model, tiny_dataset, "test", model / "eval", progress=False)
    from transformers import TrainingArguments

    hp = hyperparameters_from_args(TrainingArguments(output_dir=str(tmp_path / "t"), learning_rate=3e-4, num_train_epochs=2,
                                                     report_to="none"))
    path = write_model_card(model, base_model="microsoft/swin-tiny-patch4-window7-224", init="pretrained",
                            dataset_id="tester/minerals-synthetic", hyperparameters=hp, training={"train_runtime_s": 1.5})
    text = path.read_text()
    meta = _front_matter(text)
    assert meta["base_model"] == "microsoft/swin-tiny-patch4-window7-224"
    assert meta["library_name"] == "transformers" and meta["pipeline_tag"] == "image-classification"
    assert meta["datasets"] == ["tester/minerals-synthetic"] and meta["license"] == "apache-2.0"
    assert "synthetic-data" in meta["tags"]
    name, evals = model_index_to_eval_results(meta["model-index"])
    by_type = {e.metric_type: e.metric_value for e in evals}
    assert by_type["accuracy"] == pytest.approx(results["accuracy"], abs=1e-4)
    assert by_type["f1"] == pytest.approx(results["macro_f1"], abs=1e-4)
    assert all(e.dataset_split == "test" and e.task_type == "image-classification" for e in evals)
    card = ModelCard.load(path)  # huggingface_hub validates the metadata on load
    assert card.data.model_name == name == "model"
    assert "SYNTHETIC data" in text and "| learning_rate | 0.0003 |" in text
    assert [line for line in text.splitlines() if line.startswith("## ")] == CARD_SECTIONS
    assert "American Mineralogist" in text and "109" in text and 'pipeline("image-classification"' in text
    for cls in NAMES:
        assert f"| {cls} |" in text


def test_model_card_scratch_no_eval(tiny_model_factory, tmp_path):
    import shutil

    from hf_minerals.model_card import write_model_card

    model = tmp_path / "m"
    shutil.copytree(tiny_model_factory("resnet"), model)
    text = write_model_card(model, base_model="microsoft/resnet-50", init="scratch", synthetic=False).read_text()
    meta = _front_matter(text)
    assert "base_model" not in meta  # random weights: the Hub id is not a base model
    assert "model-index" not in meta and "not been evaluated" in text
    assert "SYNTHETIC" not in text and "random initialisation" in text
    with pytest.raises(ValueError, match="init must be"):
        write_model_card(model, init="imagenet")


def test_training_curves_and_comparison_plots(tmp_path):
    from hf_minerals.plots import plot_comparison, plot_training_curves

    history = [{"loss": 1.6 - 0.1 * i, "epoch": 0.5 * i, "step": 5 * i} for i in range(1, 7)]
    history += [{"eval_loss": 1.5 - 0.2 * e, "eval_accuracy": 0.3 + 0.2 * e, "eval_macro_f1": 0.25 + 0.2 * e,
                 "epoch": float(e), "step": 10 * e} for e in (1, 2, 3)]
    history.append({"train_runtime": 3.0, "train_loss": 1.2, "epoch": 3.0, "step": 30})
    assert plot_training_curves(history, tmp_path / "c.png", synthetic=True).stat().st_size > 0
    assert plot_training_curves([], tmp_path / "empty.png").stat().st_size > 0
    rows = [{"name": "swin / scratch", "accuracy": 0.5, "macro_f1": 0.4}, {"name": "resnet / scratch", "accuracy": 0.3,
                                                                        "macro_f1": None}]
    assert plot_comparison(rows, tmp_path / "cmp.png", note="offline").stat().st_size > 0


def test_no_script_shadows_an_installed_package():
    """``python scripts/X.py`` puts scripts/ first on sys.path: a script named like a library (the old
    ``scripts/evaluate.py``) would shadow it for every script. None may."""
    import importlib.util
    from pathlib import Path

    scripts = Path(__file__).resolve().parents[1] / "scripts"
    names = sorted(p.stem for p in scripts.glob("*.py"))
    assert "eval_model" in names and "evaluate" not in names
    shadowing = [n for n in names if importlib.util.find_spec(n) is not None]
    assert not shadowing, f"scripts/ would shadow installed modules: {shadowing}"


def test_one_split_loader(tiny_dataset, tmp_path):
    """data.loading serves evaluation, training and calibration alike: folder, DatasetDict, Dataset, errors."""
    import datasets

    from hf_minerals.data.loading import (
        DatasetLoadError,
        is_synthetic,
        load_dataset_dict,
        load_split,
        model_ids,
    )
    from hf_minerals.training.data import TrainingDataError, training_dataset_dict

    dsd = load_dataset_dict(tiny_dataset)
    assert isinstance(dsd, datasets.DatasetDict) and set(dsd) == {"train", "test"}
    split, name = load_split(dsd, "test")
    assert len(split) == 15 and name == str(tiny_dataset)  # the folder it was saved to, for the report
    assert load_split(split)[0] is split and load_split(str(tiny_dataset), "train")[1] == str(tiny_dataset)
    assert is_synthetic(split) and not is_synthetic(split.remove_columns("synthetic"))
    assert training_dataset_dict(str(tiny_dataset))["train"].num_rows == 15
    (tmp_path / "file.txt").write_text("x")
    with pytest.raises(DatasetLoadError, match="is a file"):
        load_split(tmp_path / "file.txt")
    with pytest.raises(DatasetLoadError, match="not a saved data set"):
        training_dataset_dict(str(tmp_path))
    with pytest.raises(TrainingDataError, match="no data set given"):
        training_dataset_dict("")
    with pytest.raises(DatasetLoadError, match="cannot load data set 'nobody/nothing'"):
        load_split("nobody/nothing")  # offline in tests: a clear error naming the id
    assert model_ids(["gold", "pyrite", "gold"], ["pyrite", "gold"]).tolist() == [1, 0, 1]
    with pytest.raises(ValueError, match=r"does not know: \['galena'\]"):
        model_ids(["galena"], ["pyrite", "gold"])


def test_quickstart_card_shows_intervals_and_calibrated_ece(tmp_path, monkeypatch):
    """``make quickstart`` (tiny settings): calibrated before the report; the card gives CIs and ECE before/after."""
    import yaml as _yaml

    from hf_minerals.quickstart import main as quickstart

    monkeypatch.chdir(tmp_path)
    quickstart(["--per_class", "20", "--image_size", "48", "--max_steps", "3", "--disable_tqdm", "true",
                "--dataloader_pin_memory", "false"])
    model = tmp_path / "outputs" / "quickstart" / "model"
    calibration = json.loads((model / "calibration.json").read_text())
    assert "disjoint groups" in calibration["fitted_on"]
    report = json.loads((tmp_path / "outputs" / "quickstart" / "eval" / "eval_results.json").read_text())
    assert report["calibration"] == calibration and report["ece_calibrated"] is not None
    card = (model / "README.md").read_text()
    meta = _yaml.safe_load(card.split("---\n")[1])
    names = [m["name"] for m in meta["model-index"][0]["results"][0]["metrics"]]
    assert any(n.startswith("Accuracy (95% CI") for n in names) and any(n.startswith("Macro F1 (95% CI") for n in names)
    assert {"ECE before calibration", "ECE after calibration"} <= set(names)
    assert "| 95 % CI |" in card and "after calibration" in card and "bootstrap" in card
