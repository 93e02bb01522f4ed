"""ONNX export and the ONNX Runtime predictor: same answers as torch, int8 copy runs."""

from __future__ import annotations

import json

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
