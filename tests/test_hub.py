"""Hub round trips against the loopback server (tests/hub_server.py) with the stock clients."""

from __future__ import annotations

import json
import os
import runpy
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml
from data_fixtures import make_folder

from hf_minerals.data import build_dataset

REPO = Path(__file__).resolve().parents[1]
_BEFORE = (os.environ.get("HF_HUB_OFFLINE"), os.environ.get("HF_ENDPOINT"))


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("hubdata")
    dsd, rep = build_dataset(make_folder(tmp / "src", per_class=8, specimens=4, metadata=True), tmp / "out",
                             group_column="specimen", progress=False)
    return tmp / "out", dsd, rep


def _publish(argv: list[str]) -> None:
    old = sys.argv
    sys.argv = ["publish.py", *argv]
    try:
        runpy.run_path(str(REPO / "scripts" / "publish.py"), run_name="__main__")
    finally:
        sys.argv = old


def _table(dsd) -> dict:
    """source_path -> (split, label, group, crop_box, synthetic, pixels) for exact comparison."""
    return {r["source_path"]: (split, r["label"], r["group"], tuple(r["crop_box"]), r["synthetic"],
                               np.asarray(r["image"]).tobytes())
            for split, ds in dsd.items() for r in ds}


def test_publish_dataset_then_load_dataset_round_trips(hub_server, built, tmp_path, capsys, monkeypatch):
    import datasets

    out, dsd, rep = built
    monkeypatch.chdir(tmp_path)  # the resolved arguments go to outputs/publish/ under the working folder
    _publish(["dataset", "--repo_id", "tester/opaque-minerals", "--dataset", str(out)])
    assert "published" in capsys.readouterr().out
    args_file = tmp_path / "outputs/publish/dataset-tester--opaque-minerals.args.yaml"
    assert "repo_id: tester/opaque-minerals" in args_file.read_text()
    back = datasets.load_dataset("tester/opaque-minerals", cache_dir=str(tmp_path / "cache"))
    assert set(back) == set(dsd)
    assert back["train"].features == dsd["train"].features
    assert back["train"].features["label"].names == ["chalcopyrite", "galena", "pyrite"]
    assert _table(back) == _table(dsd)

    files = hub_server.files("tester/opaque-minerals", "dataset")
    assert json.loads(files["build_report.json"]) == json.loads((out / "build_report.json").read_text())
    readme = files["README.md"].decode()
    head = yaml.safe_load(readme[4:].partition("\n---\n")[0])
    label = next(f for f in head["dataset_info"]["features"] if f["name"] == "label")
    assert list(label["dtype"]["class_label"]["names"].values()) == ["chalcopyrite", "galena", "pyrite"]
    assert head["task_categories"] == ["image-classification"] and head["pretty_name"]
    assert "## How the splits were made" in readme and "Cai" in readme


def test_hub_id_as_build_source(hub_server, built, tmp_path):
    out, dsd, _ = built
    dsd.push_to_hub("tester/minerals-src")
    again, rep = build_dataset("tester/minerals-src", tmp_path / "rebuilt", progress=False)
    assert rep["source"]["kind"] == "hub"
    assert {s: len(d) for s, d in again.items()} == {s: len(d) for s, d in dsd.items()}  # given splits honoured
    assert sorted(again["test"]["group"]) == sorted(dsd["test"]["group"])
    assert rep["leakage"]["groups_in_two_splits"] == 0


def test_model_and_space_repos_and_pipeline(hub_server, tiny_model_factory, tmp_path):
    from huggingface_hub import HfApi, hf_hub_download
    from PIL import Image
    from transformers import pipeline

    api = HfApi()
    folder = tiny_model_factory("resnet", labels=("galena", "pyrite"), image_size=32)
    api.create_repo("tester/tiny", exist_ok=True)
    api.upload_folder(repo_id="tester/tiny", folder_path=str(folder))
    assert {"config.json", "model.safetensors"} <= {f.path for f in api.list_repo_tree("tester/tiny", recursive=True)}
    assert json.loads(Path(hf_hub_download("tester/tiny", "config.json")).read_text())["id2label"]
    clf = pipeline("image-classification", model="tester/tiny")
    preds = clf(Image.new("RGB", (40, 40), (200, 200, 50)))
    assert {p["label"] for p in preds} == {"galena", "pyrite"}

    api.create_repo("tester/demo", repo_type="space", space_sdk="gradio")
    api.upload_file(path_or_fileobj=b"print('hi')\n", path_in_repo="app.py", repo_id="tester/demo", repo_type="space")
    assert hub_server.files("tester/demo", "space")["app.py"] == b"print('hi')\n"
    assert api.space_info("tester/demo").sdk == "gradio"
    info = api.get_paths_info("tester/demo", ["app.py"], repo_type="space")
    assert info[0].size == len(b"print('hi')\n")


def test_env_restored_after_hub_tests():
    from huggingface_hub import constants

    assert (os.environ.get("HF_HUB_OFFLINE"), os.environ.get("HF_ENDPOINT")) == _BEFORE
    assert constants.HF_HUB_OFFLINE == (_BEFORE[0] == "1")
    assert not constants.ENDPOINT.startswith("http://127.0.0.1")
