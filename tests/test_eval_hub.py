"""Model push to the loopback Hub: ``publish_model`` / ``publish.py model``, then ``pipeline(model=repo_id)``."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import yaml
from hub_server import hub_server_fixture
from PIL import Image


@pytest.fixture
def hub(tmp_path_factory):
    yield from hub_server_fixture(tmp_path_factory)


@pytest.fixture
def carded_model(tiny_model_factory, tmp_path):
    from hf_minerals.model_card import write_model_card

    model = tmp_path / "my-model"
    shutil.copytree(tiny_model_factory("swin"), model)
    (model / "checkpoint-2").mkdir()
    (model / "checkpoint-2" / "optimizer.pt").write_bytes(b"not for the Hub")
    (model / "training_args.bin").write_bytes(b"pickle")
    write_model_card(model, base_model="microsoft/swin-tiny-patch4-window7-224", init="pretrained", synthetic=True)
    return model


def test_publish_model_then_pipeline_by_repo_id(hub, carded_model, tmp_path, monkeypatch):
    from transformers import pipeline

    from hf_minerals.hub import main as publish_main
    from hf_minerals.predict import Predictor

    monkeypatch.chdir(tmp_path)
    publish_main(["model", "--model_dir", str(carded_model), "--repo_id", "tester/minerals-swin"])
    files = hub.files("tester/minerals-swin")
    assert {"config.json", "model.safetensors", "preprocessor_config.json", "README.md"} <= set(files)
    assert not any(f.startswith("checkpoint-") or f.endswith((".bin", ".pt")) for f in files)
    card = files["README.md"].decode()
    assert 'model="tester/minerals-swin"' in card and str(carded_model) not in card
    meta = yaml.safe_load(card.split("---\n")[1])
    assert meta["pipeline_tag"] == "image-classification" and "synthetic-data" in meta["tags"]

    clf = pipeline("image-classification", model="tester/minerals-swin")
    rng = np.random.default_rng(0)
    out = clf(Image.fromarray(rng.integers(0, 255, (64, 64, 3), dtype=np.uint8)), top_k=5)
    assert {o["label"] for o in out} == {"arsenopyrite", "chalcopyrite", "gold", "pyrite", "stibnite"}
    assert Predictor.from_pretrained("tester/minerals-swin").labels == Predictor.from_pretrained(carded_model).labels


def test_publish_model_refuses_incomplete_folders(hub, tiny_model_factory, tmp_path):
    from hf_minerals.hub import publish_model

    bare = tmp_path / "bare"
    shutil.copytree(tiny_model_factory("resnet"), bare)
    with pytest.raises(FileNotFoundError, match="no README.md model card"):
        publish_model(bare, "tester/bare")
    (bare / "model.safetensors").unlink()
    with pytest.raises(ValueError, match="safetensors"):
        publish_model(bare, "tester/bare")
    with pytest.raises(FileNotFoundError, match="not a saved model folder"):
        publish_model(tmp_path / "nothing", "tester/bare")
    assert ("model", "tester/bare") not in hub.state.repos  # nothing half-pushed


def test_train_push_to_hub_then_pipeline(hub, tmp_path):
    """``--push_to_hub --hub_model_id`` of scripts/train.py lands a complete, pipeline-ready repo."""
    import datasets
    from transformers import pipeline

    from hf_minerals.training import main as train_main

    names = ["gold", "pyrite", "stibnite"]
    rng = np.random.default_rng(0)
    images = [Image.fromarray(rng.integers(0, 255, (40, 40, 3), dtype=np.uint8)) for _ in range(6)]
    feats = datasets.Features({"image": datasets.Image(), "label": datasets.ClassLabel(names=names),
                               "synthetic": datasets.Value("bool")})
    split = datasets.Dataset.from_dict({"image": images, "label": [i % 3 for i in range(6)], "synthetic": [True] * 6},
                                       features=feats)
    datasets.DatasetDict(train=split, validation=split, test=split).save_to_disk(str(tmp_path / "ds"))
    train_main(["--model_name_or_path", "compact:swin", "--init", "scratch", "--dataset_name", str(tmp_path / "ds"),
                "--output_dir", str(tmp_path / "run"), "--max_steps", "1", "--per_device_train_batch_size", "3",
                "--eval_strategy", "no", "--save_strategy", "no", "--report_to", "none", "--disable_tqdm", "true",
                "--push_to_hub", "true", "--hub_model_id", "tester/pushed"])
    files = hub.files("tester/pushed")
    assert {"model.safetensors", "config.json", "preprocessor_config.json", "README.md", "confusion_matrix.png"} <= set(files)
    card = files["README.md"].decode()
    assert "model-index" in card and 'model="tester/pushed"' in card and "SYNTHETIC" in card
    out = pipeline("image-classification", model="tester/pushed")(images[0])
    assert {o["label"] for o in out} == set(names)
