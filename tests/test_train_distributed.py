"""The same train script under ``accelerate launch --multi_gpu --num_processes 2`` on CPU (gloo)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from test_train import MINERALS, make_dataset

REPO = Path(__file__).resolve().parent.parent


def test_two_process_training_gathers_every_eval_sample_once(tiny_model_factory, tmp_path):
    # 13 test images over 2 processes with eval batches of 4: uneven shards, padded by accelerate and
    # trimmed again by gather_for_metrics - no sample missing, none counted twice.
    data = make_dataset(tmp_path / "ds", sizes=(24, 11, 13))
    out = tmp_path / "out"
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1", "ACCELERATE_LOG_LEVEL": "error"}
    cmd = [
        sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
        "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no", "--main_process_port", "0",
        str(REPO / "scripts/train.py"),
        "--model_name_or_path", str(tiny_model_factory("swin")), "--init", "scratch", "--dataset_name", str(data),
        "--output_dir", str(out), "--max_steps", "3", "--per_device_train_batch_size", "4",
        "--per_device_eval_batch_size", "4", "--save_strategy", "no", "--report_to", "none", "--disable_tqdm", "true",
        "--dataloader_pin_memory", "false",
    ]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=240, cwd=REPO)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]

    results = json.loads((out / "all_results.json").read_text())
    # gathered across both processes; validation = selection part (eval_n) + calibration part (disjoint)
    calibration = json.loads((out / "calibration.json").read_text())
    assert results["eval_n"] == results["eval_samples"] and results["test_n"] == 13
    assert results["eval_n"] + calibration["n_validation"] == 11
    # the distributed Trainer eval and the single-process report agree sample for sample
    assert results["test_accuracy"] == results["test_report_accuracy"]
    state = json.loads((out / "trainer_state.json").read_text())
    assert state["global_step"] == 3
    assert state["train_batch_size"] == 4
    assert results["epoch"] == 1.0  # 3 steps x 4 images x 2 processes = 24 = one epoch
    assert "| processes | 2 |" in (out / "README.md").read_text()
    assert json.loads((out / "config.json").read_text())["id2label"] == {str(i): n for i, n in enumerate(MINERALS)}
