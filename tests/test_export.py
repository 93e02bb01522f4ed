"""ONNX export and the ONNX Runtime predictor: same answers as torch, int8 copy runs."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("onnxruntime")  # the optional [onnx] extra

from hf_minerals.export import OnnxPredictor, export_onnx  # noqa: E402
from hf_minerals.predict import Predictor  # noqa: E402


@pytest.mark.parametrize("arch", ["resnet", "swin"])
def test_onnx_export_matches_torch(tiny_model_factory, tmp_path, arch):
    folder = tiny_model_factory(arch)
    record = export_onnx(folder, tmp_path / "onnx", int8=True)
    assert record["fp32_max_abs_logit_diff"] < 1e-4
    assert json.loads((tmp_path / "onnx" / "export.json").read_text())["files"] == ["model.onnx", "model_int8.onnx"]
    rng = np.random.default_rng(0)
    images = [Image.fromarray(rng.integers(0, 255, (80, 90, 3), dtype=np.uint8)) for _ in range(5)]
    torch_p = Predictor.from_pretrained(folder, bf16=False).predict_proba(images)
    onnx = OnnxPredictor(tmp_path / "onnx")
    assert onnx.labels == Predictor.from_pretrained(folder, bf16=False).labels
    np.testing.assert_allclose(onnx.predict_proba(images), torch_p, atol=1e-5)
    int8 = OnnxPredictor(tmp_path / "onnx", int8=True).predict_proba(images)
    assert int8.shape == torch_p.shape and np.allclose(int8.sum(1), 1, atol=1e-5)


def test_export_cli_and_missing_int8(tiny_model_factory, tmp_path):
    from hf_minerals.cli import main as cli_main

    cli_main(["export", "--model", str(tiny_model_factory("resnet")), "--output_dir", str(tmp_path / "o")])
    assert (tmp_path / "o" / "model.onnx").stat().st_size > 0 and (tmp_path / "o" / "args.yaml").exists()
    with pytest.raises(FileNotFoundError, match="--int8"):
        OnnxPredictor(tmp_path / "o", int8=True)


# -- the ONNX backend of the one Predictor ------------------------------------------------------------------
def _scenes(n: int, size: int = 80) -> list:
    from hf_minerals.minerals import PAPER_MINERALS
    from hf_minerals.synthetic import render_scene

    return [Image.fromarray(render_scene(PAPER_MINERALS[i % 5], size=size, seed=i).image) for i in range(n)]


def _calibrated_copy(tiny_model_factory, tmp_path, method: str) -> Path:
    """A tiny Swin folder trained-with-photo-views (config flag), a temperature, an unknown threshold and an
    open-set score of ``method`` fitted on its own features / colour statistics, thresholds at the median."""
    import shutil

    import torch

    from hf_minerals.openset import OODScorer
    from hf_minerals.openset.colour import colour_stats
    from hf_minerals.predict import PHOTO_VIEWS_ATTR

    folder = tmp_path / "model"
    shutil.copytree(tiny_model_factory("swin", init="kaiming"), folder)
    cfg = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps({**cfg, PHOTO_VIEWS_ATTR: True}))
    p = Predictor.from_pretrained(folder, backend="torch", bf16=False)
    pv = p.preprocess(_scenes(20))
    logits, feats = p.forward(pv)
    colour = colour_stats(pv, p.data_config.mean, p.data_config.std)
    labels = logits.argmax(1).numpy()
    scorer = OODScorer.fit(feats, labels, len(p.labels), method, scale_features=feats, colour=colour,
                           scale_colour=colour)
    scorer.save(folder)
    dist = scorer.distance(feats, colour)
    top = torch.softmax(logits / 0.5, 1).max(1).values.numpy()
    from hf_minerals.colour import ImagingEnvelope, photo_reference

    # the imaging envelope of 3 scenes only: most photos fall outside it and take the normalised view alone
    envelope = ImagingEnvelope.fit(np.stack([photo_reference(np.asarray(im)) for im in _scenes(3)]))
    calib = {"temperature": 0.5, "unknown_threshold": float(np.median(top)), "imaging_envelope": envelope.to_dict(),
             "ood": {"method_name": method, "file": "openset.safetensors", "threshold": float(np.median(dist)),
                     "tile_threshold": float(np.quantile(dist, 0.75))}}
    (folder / "calibration.json").write_text(json.dumps(calib))
    return folder


@pytest.mark.parametrize("method", ["colour", "knn+colour"])
def test_onnx_backend_answers_like_torch(tiny_model_factory, tmp_path, method):
    """Labels, probabilities (1e-4), photo views, unknown reasons and open-set scores: ONNX == torch."""
    folder = _calibrated_copy(tiny_model_factory, tmp_path, method)
    held_out = _scenes(12, 96)
    record = export_onnx(folder, images=held_out, images_source="12 SYNTHETIC scenes (test)")
    assert record["outputs"] == ["logits", "features"] and record["agreement"]["held_out"]
    assert record["agreement"]["top1"] == 1.0 and record["agreement"]["max_prob_diff"] < 1e-4
    torch_p = Predictor.from_pretrained(folder, backend="torch", bf16=False)
    onnx_p = Predictor.from_pretrained(folder, backend="onnx")
    assert onnx_p.onnx is not None and onnx_p.backend.startswith("onnxruntime") and torch_p.onnx is None
    assert onnx_p.photo_views and torch_p.photo_views and onnx_p.ood.method == method
    assert onnx_p.imaging_envelope is not None and torch_p.imaging_envelope is not None
    images = held_out + [Image.new("RGB", (96, 96), (120, 110, 100))]  # a featureless one: open-set score inf
    a, b = torch_p.predict(images, top_k=3), onnx_p.predict(images, top_k=3)
    assert 0 < torch_p.outside_envelope == onnx_p.outside_envelope < len(images)
    assert [x.label for x in a] == [x.label for x in b]
    assert [x.unknown_reason for x in a] == [x.unknown_reason for x in b]
    assert {"not like a known mineral", "featureless or noise-like image", ""} <= {x.unknown_reason for x in a}
    np.testing.assert_allclose([x.score for x in a], [x.score for x in b], atol=1e-4)
    np.testing.assert_allclose([x.ood_score for x in a], [x.ood_score for x in b], rtol=1e-4)
    np.testing.assert_allclose(torch_p.predict_proba(images), onnx_p.predict_proba(images), atol=1e-4)
    # tiles (the mapper's path, photo reference pinned to the whole photo) agree too
    big = _scenes(1, 200)[0]
    pt, ot = torch_p.predict_scores([big], tiles=True), onnx_p.predict_scores([big], tiles=True)
    np.testing.assert_allclose(pt[0], ot[0], atol=1e-4)
    np.testing.assert_allclose(pt[1], ot[1], rtol=1e-4)
    # the exported folder alone (no torch weights) is the same Predictor
    alone = OnnxPredictor(folder / "onnx")
    np.testing.assert_allclose(alone.predict_proba(images), onnx_p.predict_proba(images), atol=1e-6)
    # attribution needs torch: said, not silently done on other weights
    from hf_minerals.explain.explainer import Explainer

    with pytest.raises(ValueError, match="backend='torch'"):
        Explainer(onnx_p)
    with pytest.raises(ValueError, match="fp32"):
        Predictor.from_pretrained(folder, backend="onnx", bf16=True)


def test_backend_auto_needs_a_passing_held_out_check(tiny_model_factory, tmp_path, capsys):
    import shutil

    folder = tmp_path / "m"
    shutil.copytree(tiny_model_factory("resnet", init="kaiming"), folder)

    def auto() -> tuple[bool, str]:
        p = Predictor.from_pretrained(folder, bf16=False)
        return p.onnx is not None, capsys.readouterr().err

    used, err = auto()
    assert not used and "no ONNX export" in err
    export_onnx(folder)  # random pixels only: recorded as such, and not enough for auto
    record = json.loads((folder / "onnx" / "export.json").read_text())
    assert record["agreement"]["held_out"] is False and "random" in record["agreement"]["images"]
    used, err = auto()
    assert not used and "random pixel values" in err
    export_onnx(folder, images=_scenes(10), images_source="10 SYNTHETIC scenes")
    used, err = auto()
    assert used and "onnx backend" in err and "100.0% top-1 agreement" in err
    assert not Predictor.from_pretrained(folder, bf16=True).onnx  # bf16 runs in torch
    assert not Predictor.from_pretrained(folder, backend="torch", bf16=False).onnx
    rec_path = folder / "onnx" / "export.json"
    good = json.loads(rec_path.read_text())
    rec_path.write_text(json.dumps({**good, "agreement": {**good["agreement"], "top1": 0.99}}))
    used, err = auto()
    assert not used and "only 99.0%" in err
    rec_path.unlink()
    used, err = auto()
    assert not used and "records no agreement" in err
    rec_path.write_text(json.dumps(good))
    (folder / "model.safetensors").write_bytes((folder / "model.safetensors").read_bytes())  # same bytes: still used
    assert auto()[0]
    from tiny_models import make_tiny_model

    make_tiny_model("resnet", folder, seed=1, init="kaiming")  # retrained after export: the export is stale
    used, err = auto()
    assert not used and "other weights" in err
    with pytest.raises(ValueError, match="backend"):
        Predictor.from_pretrained(folder, backend="tensorrt")


def test_backend_option_on_the_commands():
    from hf_minerals.cli_args import parse_command_line
    from hf_minerals.evaluation import EvaluateArguments
    from hf_minerals.mapping.command import MapArguments
    from hf_minerals.predict import PredictArguments

    (p,) = parse_command_line([PredictArguments], ["--images", "x.png", "--model", "m", "--backend", "onnx"], prog="p")
    (m,) = parse_command_line([MapArguments], ["--image", "x.png", "--model", "m", "--output_dir", "o"], prog="m")
    (e,) = parse_command_line([EvaluateArguments], ["--model", "m", "--dataset", "d", "--backend", "torch"], prog="e")
    assert (p.backend, m.backend, e.backend) == ("onnx", "auto", "torch")
    with pytest.raises(SystemExit):
        parse_command_line([PredictArguments], ["--images", "x", "--model", "m", "--backend", "tensorrt"], prog="p")


def test_backend_auto_without_onnxruntime_says_so(tiny_model_factory, tmp_path, monkeypatch, capsys):
    import shutil

    from hf_minerals import onnx_backend

    folder = tmp_path / "m"
    shutil.copytree(tiny_model_factory("resnet"), folder)
    export_onnx(folder, images=_scenes(4), images_source="4 SYNTHETIC scenes")
    monkeypatch.setattr(onnx_backend, "onnx_available", lambda: "onnxruntime is not installed (test)")
    assert Predictor.from_pretrained(folder, bf16=False).onnx is None
    assert "torch backend (onnxruntime is not installed (test))" in capsys.readouterr().err
    with pytest.raises(SystemExit, match="needs onnxruntime"):
        Predictor.from_pretrained(folder, backend="onnx")
