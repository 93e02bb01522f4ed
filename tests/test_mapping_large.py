"""An 8k x 8k section is mapped streamed: peak RSS growth stays far below the decoded image size."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np

CHILD = r"""
import json, sys
import numpy as np
from hf_minerals.mapping import map_section, open_section
from hf_minerals.predict import Predictor

def status_mb(key):  # VmRSS / VmHWM of this process (ru_maxrss would include the parent's peak: kept across exec)
    for line in open("/proc/self/status"):
        if line.startswith(key + ":"):
            return int(line.split()[1]) / 1024.0

pred = Predictor.from_pretrained(sys.argv[1], batch_size=4, num_threads=1)  # 1 thread: robust on a busy CI box
warm = np.full((1024, 1024, 3), 200, np.uint8)
map_section(pred, warm, tile=256, canvas_max_side=512, progress=False)  # warm up allocator + model
del warm
with open("/proc/self/clear_refs", "w") as fh:
    fh.write("5")  # reset the peak-RSS mark (VmHWM) to the current RSS
before = status_mb("VmRSS")
with open_section(sys.argv[2]) as src:
    m = map_section(pred, src, tile=256, canvas_max_side=512, progress=False)
print(json.dumps({"before_mb": before, "after_mb": status_mb("VmHWM"), "kind": src.kind, "tiles": len(m.grid),
                  "classified": m.timing["tiles_classified"], "seconds": m.timing["total_s"],
                  "total": m.abundance["total_pixels"]}))
"""


def test_8k_section_streamed_with_bounded_memory(tiny_model_factory, tmp_path):
    side = 8192
    path = tmp_path / "synthetic_mosaic_8k.npy"
    arr = np.lib.format.open_memmap(path, mode="w+", dtype=np.uint8, shape=(side, side, 3))
    rng = np.random.default_rng(0)
    for y in range(0, side, 1024):  # written band by band: dark gangue, a bright grain every ~1000 px
        band = np.full((1024, side, 3), 35, np.uint8)
        for x in rng.integers(0, side - 200, 4):
            band[100:300, x : x + 200] = 210
        arr[y : y + 1024] = band
    arr.flush()
    del arr
    decoded_mb = side * side * 3 / 2**20  # 192 MiB
    proc = subprocess.run([sys.executable, "-c", CHILD, str(tiny_model_factory("resnet")), str(path)],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    res = json.loads(proc.stdout.strip().splitlines()[-1])
    assert res["kind"] == "npy (streamed)" and res["total"] == side * side
    assert res["tiles"] == 32 * 32 and 0 < res["classified"] < res["tiles"]
    growth = res["after_mb"] - res["before_mb"]
    assert res["before_mb"] > 50  # a real reading of this process (torch + model loaded)
    assert growth < decoded_mb / 4, f"peak RSS grew {growth:.0f} MiB mapping a {decoded_mb:.0f} MiB image"
