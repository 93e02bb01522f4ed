"""Predictor options, calibration (temperature + unknown threshold), the predict/calibrate CLIs, open-set report.

Predictor vs ``pipeline`` agreement for the three families lives in tests/test_core.py.
"""

from __future__ import annotations

import csv
import json
import shutil

import numpy as np
import pytest
import torch
from PIL import Image

from hf_minerals.calibration import (
    calibrate_logits,
    choose_unknown_threshold,
    fit_temperature,
    open_set_report,
    write_calibration,
)
from hf_minerals.predict import UNKNOWN, Predictor


def _images(n=6, seed=0, size=(70, 60)):
    rng = np.random.default_rng(seed)
    return [Image.fromarray(rng.integers(0, 255, (5, 6, 3), dtype=np.uint8)).resize(size, Image.BILINEAR) for _ in range(n)]


def test_fit_temperature_recovers_overconfidence():
    rng = np.random.default_rng(0)
    z = torch.tensor(rng.normal(0, 2.0, (4000, 5)), dtype=torch.float32)
    y = torch.multinomial(torch.softmax(z, -1), 1).squeeze(1)  # labels drawn from the true probabilities
    assert fit_temperature(3.0 * z, y) == pytest.approx(3.0, rel=0.1)  # 3x over-confident logits -> T ~ 3
    assert fit_temperature(0.5 * z, y) == pytest.approx(0.5, rel=0.1)  # under-confident -> T < 1
    rec = calibrate_logits(3.0 * z, y)
    assert rec["nll_after"] < rec["nll_before"] and rec["ece_after"] < rec["ece_before"]


def test_unknown_threshold_keeps_target_share():
    rng = np.random.default_rng(1)
    probs = rng.dirichlet(np.ones(5) * 0.3, 2000)
    labels = rng.integers(0, 5, 2000)
    labels[:1500] = probs[:1500].argmax(1)
    thr = choose_unknown_threshold(probs, labels, keep=0.95)
    correct = probs.argmax(1) == labels
    kept = (probs.max(1) >= thr)[correct].mean()
    assert 0.95 <= kept < 0.96
    with pytest.raises(ValueError):
        choose_unknown_threshold(probs, labels, keep=0)


def test_decide_respects_threshold(tiny_model_factory):
    pred = Predictor.from_pretrained(tiny_model_factory("resnet"), unknown_threshold=0.5)
    probs = np.array([[0.6, 0.1, 0.1, 0.1, 0.1], [0.3, 0.2, 0.2, 0.2, 0.1], [0.1, 0.1, 0.1, 0.2, 0.5]])
    out = pred.decide(probs, top_k=2)
    assert [p.label for p in out] == ["arsenopyrite", UNKNOWN, "stibnite"]
    assert out[1].top_k[0]["label"] == "arsenopyrite" and len(out[1].top_k) == 2  # top-k still shown
    # a per-call threshold (a Space request's) overrides the predictor's and leaves it unchanged
    assert [p.label for p in pred.decide(probs, top_k=2, unknown_threshold=0.55)] == ["arsenopyrite", UNKNOWN, UNKNOWN]
    assert [p.label for p in pred.decide(probs, unknown_threshold=0.0)][1] == "arsenopyrite"
    assert pred.unknown_threshold == 0.5


def test_calibration_file_round_trip(tiny_model_factory, tmp_path):
    folder = tmp_path / "model"
    shutil.copytree(tiny_model_factory("resnet"), folder)
    plain = Predictor.from_pretrained(folder)
    assert plain.temperature == 1.0 and plain.unknown_threshold is None and plain.calibration is None
    write_calibration(folder, {"temperature": 2.5, "unknown_threshold": 0.4})
    calib = Predictor.from_pretrained(folder)
    assert calib.temperature == 2.5 and calib.unknown_threshold == 0.4
    images = _images(3)
    logits = calib.logits(calib.preprocess(images))
    assert np.allclose(calib.predict_proba(images), torch.softmax(logits / 2.5, -1).numpy(), atol=1e-6)
    assert Predictor.from_pretrained(folder, unknown_threshold=0.9).unknown_threshold == 0.9  # explicit wins
    off = Predictor.from_pretrained(folder, use_calibration=False)
    assert off.temperature == 1.0 and off.unknown_threshold is None


@pytest.mark.parametrize("arch", ["resnet", "swin"])
def test_bf16_and_channels_last_close_to_fp32(tiny_model_factory, arch):
    folder = tiny_model_factory(arch)
    images = _images(8, seed=3)
    ref = Predictor.from_pretrained(folder).predict_proba(images)
    cl = Predictor.from_pretrained(folder, channels_last=True).predict_proba(images)
    assert np.allclose(ref, cl, atol=1e-4)
    bf = Predictor.from_pretrained(folder, bf16=True)
    assert bf.channels_last == (arch == "resnet")  # auto: conv nets only
    assert np.abs(bf.predict_proba(images) - ref).max() < 0.05


def test_predict_cli_csv_with_bad_file(tiny_model_factory, tmp_path, capsys):
    from hf_minerals.cli import main as cli_main

    folder = tmp_path / "imgs"
    folder.mkdir()
    for i, im in enumerate(_images(3)):
        im.save(folder / f"synthetic_{i}.png")
    (folder / "broken.jpg").write_bytes(b"not really a jpeg")
    out = tmp_path / "preds.csv"
    cli_main(["predict", "--images", str(folder), "--model", str(tiny_model_factory("swin")), "--top_k", "2",
              "--output_file", str(out), "--batch_size", "2", "--no_progress"])
    rows = list(csv.DictReader(out.open()))
    assert len(rows) == 4
    bad = [r for r in rows if r["error"]]
    assert len(bad) == 1 and bad[0]["path"].endswith("broken.jpg") and "not an image" in bad[0]["error"]
    good = [r for r in rows if not r["error"]]
    assert all(r["label"] == r["top1_label"] and float(r["top1_score"]) >= float(r["top2_score"]) for r in good)
    assert "broken.jpg" in capsys.readouterr().err
    # the resolved arguments sit beside the CSV and repeat the run
    args_file = tmp_path / "preds.csv.args.yaml"
    again = tmp_path / "again.csv"
    cli_main(["predict", "--config", str(args_file), "--output_file", str(again)])
    assert again.read_text() == out.read_text()


def test_calibrate_cli_and_open_set(tiny_model_factory, tmp_path):
    from datasets import ClassLabel, Dataset, DatasetDict, Features
    from datasets import Image as ImageFeature

    from hf_minerals.cli import main as cli_main

    folder = tmp_path / "model"
    shutil.copytree(tiny_model_factory("resnet"), folder)
    names = ["arsenopyrite", "chalcopyrite", "gold", "pyrite", "stibnite"]
    pred = Predictor.from_pretrained(folder)
    images = _images(40, seed=5)
    # labels = the random model's own answers for most rows, so there are correct answers to keep
    labels = [int(i) for i in pred.predict_proba(images).argmax(1)]
    labels[::4] = [(lab + 1) % 5 for lab in labels[::4]]
    feats = Features({"image": ImageFeature(), "label": ClassLabel(names=names)})
    split = Dataset.from_dict({"image": images, "label": labels}, features=feats)
    ds = DatasetDict({"train": split, "validation": split})  # train: the open-set score's fitting split
    ds.save_to_disk(str(tmp_path / "ds"))
    cli_main(["calibrate", "--model", str(folder), "--dataset", str(tmp_path / "ds"), "--batch_size", "16"])
    rec = json.loads((folder / "calibration.json").read_text())
    assert rec["temperature"] > 0 and 0 < rec["unknown_threshold"] <= 1 and rec["n_validation"] == 40
    assert "batch_size: 16" in (folder / "calibration.json.args.yaml").read_text()
    calibrated = Predictor.from_pretrained(folder)
    assert calibrated.unknown_threshold == rec["unknown_threshold"]
    report = open_set_report(calibrated, images[:20], [names[i] for i in labels[:20]], _images(10, seed=9))
    assert 0 <= report["unseen_share_flagged_unknown"] <= 1 and report["n_unseen"] == 10
    assert 0 <= report["auroc_confidence_known_vs_unseen"] <= 1


def test_same_size_batch_path_matches_pipeline(tiny_model_factory):
    """Same-size images take the stacked-resize path; it must equal per-image preprocessing and the pipeline."""
    from transformers import AutoImageProcessor, pipeline

    from hf_minerals.preprocessing import eval_transform

    folder = tiny_model_factory("mobilenet_v2", init="kaiming")  # resize + centre crop; input-dependent outputs
    pred = Predictor.from_pretrained(folder, batch_size=4)
    images = _images(5, seed=11, size=(90, 80))
    stacked = pred.preprocess(images)
    assert torch.equal(stacked, eval_transform(images, pred.data_config))
    processor = AutoImageProcessor.from_pretrained(folder)
    reference = torch.cat([processor(im, return_tensors="pt")["pixel_values"] for im in images])
    assert float((stacked - reference).abs().max()) < 0.01
    probs = pred.predict_proba(images)
    assert np.ptp(probs, axis=0).max() > 0.05  # outputs depend on the input
    pipe = pipeline("image-classification", model=str(folder), top_k=None)
    same_pixels = pred.probabilities(pred.logits(reference))
    for row, out in zip(same_pixels, pipe(images)):
        ref = {d["label"]: d["score"] for d in out}
        assert max(abs(row[i] - ref[name]) for i, name in enumerate(pred.labels)) < 1e-5
