"""Dataset card rendering (valid YAML front matter with class names) and the GeneratorBasedBuilder."""

from __future__ import annotations

import yaml
from data_fixtures import make_folder, rows

from hf_minerals.data import MineralImages, build_dataset, render_card


def front_matter(text: str) -> dict:
    assert text.startswith("---\n")
    head, _, body = text[4:].partition("\n---\n")
    meta = yaml.safe_load(head)
    assert isinstance(meta, dict) and body.strip()
    return meta


def test_card_front_matter_and_body(tmp_path):
    dsd, rep = build_dataset(make_folder(tmp_path / "src", per_class=8, specimens=4), tmp_path / "out",
                             group_regex=r"^([a-z]{3}\d)_", progress=False)
    text = (tmp_path / "out" / "README.md").read_text()
    assert text == render_card(dsd, rep)
    meta = front_matter(text)
    assert meta["pretty_name"] and meta["license"] == "other"
    assert meta["task_categories"] == ["image-classification"] and "mineralogy" in meta["tags"]
    assert "synthetic" not in meta["tags"]
    label = next(f for f in meta["dataset_info"]["features"] if f["name"] == "label")
    assert list(label["dtype"]["class_label"]["names"].values()) == ["chalcopyrite", "galena", "pyrite"]
    assert {s["name"]: s["num_examples"] for s in meta["dataset_info"]["splits"]} == {s: len(d) for s, d in dsd.items()}
    assert meta["configs"][0]["data_files"][0] == {"split": "train", "path": "data/train-*"}
    assert "Cai" in text and "American Mineralogist" in text
    assert "--group_regex" in text and "SYNTHETIC" not in text
    assert f"| 2 | pyrite | {rep['counts']['train']['pyrite']} |" in text


def test_card_says_synthetic(tmp_path):
    dsd, rep = build_dataset(make_folder(tmp_path / "src", per_class=4), tmp_path / "out", progress=False)
    rep["source"]["synthetic"] = True
    text = render_card(dsd, rep)
    assert "synthetic" in front_matter(text)["tags"] and "SYNTHETIC DATA" in text


def test_generator_based_builder_matches_build_dataset(tmp_path):
    src = make_folder(tmp_path / "src", per_class=6, specimens=3)
    builder = MineralImages(data_dir=str(src), cache_dir=str(tmp_path / "cache"), group_regex=r"^([a-z]{3}\d)_", seed=1)
    builder.download_and_prepare()
    got = builder.as_dataset()
    want, _ = build_dataset(src, tmp_path / "out", group_regex=r"^([a-z]{3}\d)_", seed=1, progress=False)
    assert got["train"].features == want["train"].features
    assert sorted(rows(got)) == sorted(rows(want))
    assert builder.report["leakage"]["groups_in_two_splits"] == 0
