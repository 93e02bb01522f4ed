"""The one model loader: model + processor + calibration + provenance, and errors that name the real cause."""

from __future__ import annotations

import json
import shutil
import warnings

import pytest

from hf_minerals.model_loader import CalibrationWarning, ModelLoadError, load_model, read_calibration
from hf_minerals.predict import Predictor


@pytest.fixture()
def model_copy(tiny_model_factory, tmp_path):
    dst = tmp_path / "model"
    shutil.copytree(tiny_model_factory("resnet"), dst)
    return dst


def test_local_folder_gives_everything_together(model_copy):
    (model_copy / "calibration.json").write_text(json.dumps({"temperature": 2.0, "unknown_threshold": 0.4}))
    loaded = load_model(model_copy)
    assert loaded.model.config.id2label and loaded.processor is not None
    assert loaded.calibration["temperature"] == 2.0
    assert loaded.provenance["source"] == "local folder" and loaded.provenance["calibration"] == "calibration.json"
    pred = Predictor.from_pretrained(model_copy)
    assert pred.temperature == 2.0 and pred.provenance["path"] == str(model_copy.resolve())


@pytest.mark.parametrize(("damage", "message"), [
    ("truncate", "corrupt or truncated weights"),
    ("garbage", "corrupt or truncated weights"),
    ("no_config", "no config.json"),
    ("no_weights", "safetensors"),
])
def test_damaged_local_models_say_what_is_wrong(model_copy, damage, message):
    weights = model_copy / "model.safetensors"
    if damage == "truncate":
        weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 3])
    elif damage == "garbage":
        weights.write_bytes(b"not safetensors at all" * 50)
    elif damage == "no_config":
        (model_copy / "config.json").unlink()
    else:
        weights.unlink()
    with pytest.raises(ModelLoadError, match=message) as info:
        load_model(model_copy)
    assert "offline" not in str(info.value).lower()  # not "the Hub is offline ... not in the local cache"


def test_missing_folder_and_offline_hub_id_are_told_apart(tmp_path):
    with pytest.raises(ModelLoadError, match="model folder not found"):
        load_model(tmp_path / "nothing" / "here")
    with pytest.raises(ModelLoadError, match="offline"):
        load_model("nobody-owns/this-model")


def test_local_calibration_that_cannot_be_read_is_an_error(model_copy):
    (model_copy / "calibration.json").write_text("{not json")
    with pytest.raises(ModelLoadError, match="calibration.json"):
        load_model(model_copy)
    (model_copy / "calibration.json").write_text(json.dumps({"temperature": -1}))
    with pytest.raises(ModelLoadError, match="temperature"):
        read_calibration(model_copy)


def test_hub_calibration_missing_is_silent_unreadable_is_a_warning(hub_server, tiny_model_factory, tmp_path):
    from huggingface_hub import HfApi

    api = HfApi()
    folder = tiny_model_factory("resnet")
    for repo in ("tester/no-calib", "tester/bad-calib", "tester/good-calib"):
        api.create_repo(repo, exist_ok=True)
        api.upload_folder(folder_path=str(folder), repo_id=repo)
    api.upload_file(path_or_fileobj=b"{broken", path_in_repo="calibration.json", repo_id="tester/bad-calib")
    api.upload_file(path_or_fileobj=json.dumps({"temperature": 1.5}).encode(), path_in_repo="calibration.json",
                    repo_id="tester/good-calib")
    with warnings.catch_warnings():
        warnings.simplefilter("error", CalibrationWarning)
        assert load_model("tester/no-calib").calibration is None  # not there: uncalibrated, nothing to say
        assert load_model("tester/good-calib").calibration["temperature"] == 1.5
    with pytest.warns(CalibrationWarning, match="UNCALIBRATED"):
        loaded = load_model("tester/bad-calib")
    assert loaded.calibration is None and loaded.provenance["source"] == "hub"
