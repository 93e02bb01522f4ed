"""Prediction and many-section mapping under ``accelerate launch --multi_gpu --num_processes 2`` (CPU, gloo):
one merged output, identical to one process; mapping resumes (finished sections are skipped)."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
from PIL import Image

REPO = Path(__file__).resolve().parent.parent
ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1", "ACCELERATE_LOG_LEVEL": "error"}
LAUNCH = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
          "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no", "--main_process_port", "0"]


def _run(cmd: list[str]) -> subprocess.CompletedProcess:
    proc = subprocess.run(cmd, env=ENV, capture_output=True, text=True, timeout=300, cwd=REPO)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc


def _images(folder: Path, n: int, size: tuple[int, int], seed: int = 0) -> list[Path]:
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for i in range(n):
        img = np.full((size[1], size[0], 3), 40, np.uint8)
        for _ in range(8):
            y, x = rng.integers(0, size[1] - 30), rng.integers(0, size[0] - 30)
            img[y : y + 30, x : x + 30] = rng.integers(120, 250, 3)
        out.append(folder / f"synthetic_{i}.png")
        Image.fromarray(img).save(out[-1])
    return out


def test_two_process_predict_and_map_equal_one_process(tiny_model_factory, tmp_path):
    model = str(tiny_model_factory("resnet"))
    photos = _images(tmp_path / "photos", 7, (90, 80))
    (tmp_path / "photos" / "broken.png").write_bytes(b"not an image")  # an error row survives the merge too
    args = ["--images", str(tmp_path / "photos"), "--model", model, "--batch_size", "2", "--no_progress", "--bf16", "false"]
    _run([sys.executable, str(REPO / "scripts/predict.py"), *args, "--output_file", str(tmp_path / "one.csv")])
    _run([*LAUNCH, str(REPO / "scripts/predict.py"), *args, "--output_file", str(tmp_path / "two.csv")])
    one, two = (tmp_path / "one.csv").read_text(), (tmp_path / "two.csv").read_text()
    assert one == two and len(one.splitlines()) == 1 + len(photos) + 1
    assert not list(tmp_path.glob("two.csv.part*"))

    sections = _images(tmp_path / "sections", 3, (200, 160), seed=1)
    (tmp_path / "list.txt").write_text("\n".join(str(p) for p in sections[1:]) + "\n")
    margs = ["--model", model, "--images", str(sections[0]), "--images_from", str(tmp_path / "list.txt"),
             "--tile", "64", "--no_progress"]
    _run([sys.executable, str(REPO / "scripts/map_section.py"), *margs, "--output_dir", str(tmp_path / "m1")])
    two_proc = _run([*LAUNCH, str(REPO / "scripts/map_section.py"), *margs, "--output_dir", str(tmp_path / "m2")])
    assert "0 already done" in two_proc.stderr
    s1, s2 = (tmp_path / "m1" / "sections.csv").read_text(), (tmp_path / "m2" / "sections.csv").read_text()
    assert s1 == s2
    rows = list(csv.DictReader(s1.splitlines()))
    assert {r["section"] for r in rows} == {p.stem for p in sections} and rows[0]["table"] == "pixel"
    for p in sections:
        assert (tmp_path / "m2" / p.stem / "phase_labels.png").read_bytes() == (
            tmp_path / "m1" / p.stem / "phase_labels.png").read_bytes()
    # resumable: a rerun maps nothing, and a section whose folder lost its marker is mapped again
    (tmp_path / "m2" / sections[1].stem / "done.json").unlink()
    again = _run([*LAUNCH, str(REPO / "scripts/map_section.py"), *margs, "--output_dir", str(tmp_path / "m2")])
    assert again.stderr.count("already done") == 2
    assert sum(int(line.split(": ")[2].split(" mapped")[0]) for line in again.stderr.splitlines()
               if " mapped, " in line) == 1
    assert (tmp_path / "m2" / "sections.csv").read_text() == s1
