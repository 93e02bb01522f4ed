"""Prediction and mapping over many processes and machines with ``accelerate launch``.

    accelerate launch --config_file recipes/accelerate/multi_gpu.yaml scripts/predict.py photos/ --model M --output preds.csv
    accelerate launch --config_file recipes/accelerate/multi_node.yaml scripts/map_section.py --model M \
        --images_from sections.txt --output maps/

Work is split with ``PartialState().split_between_processes`` - whole batches for prediction (so every
image meets exactly the batch it would meet in one process, and the answers are bit-identical), whole
sections for mapping. Each process writes its own part; after a barrier the main process merges the
parts into one output, in input order, and removes them. With one process (plain ``python``) nothing
changes. Mapping is resumable: a section whose folder already holds a finished result is skipped, so a
rerun after a crash or a preempted node does only what is left.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")


def state() -> Any:
    """The accelerate ``PartialState`` (one process unless started by ``accelerate launch``/torchrun).

    Without CUDA it is asked for CPU processes explicitly (gloo); otherwise ``--multi_gpu`` on a CPU-only
    machine would silently give every process a world of its own."""
    import torch
    from accelerate import PartialState

    return PartialState(cpu=not torch.cuda.is_available())


def is_distributed() -> bool:
    """True under a launcher with more than one process (checked without starting a process group)."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def my_share(items: Sequence[T], group: int = 1) -> tuple[list[T], int]:
    """This process's contiguous share of ``items``, split on multiples of ``group`` (a batch), and the
    index of its first item."""
    st = state()
    groups = [list(items[i : i + group]) for i in range(0, len(items), group)]
    starts = list(range(0, len(items), group))
    with st.split_between_processes(list(zip(starts, groups))) as mine:
        mine = list(mine)
    return [x for _, g in mine for x in g], (mine[0][0] if mine else len(items))


def write_csv_sharded(rows: Iterable[dict[str, Any]], fields: Sequence[str], output: str | os.PathLike) -> Path:
    """Each process writes ``OUTPUT.partNNNNN``; the main process concatenates them (process order = input
    order) into ``output`` and deletes the parts. Returns ``output``."""
    st = state()
    out = Path(output)
    part = out.with_name(f"{out.name}.part{st.process_index:05d}")
    with part.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(fields), restval="")
        for row in rows:
            writer.writerow(row)
    st.wait_for_everyone()
    if st.is_main_process:
        parts = [out.with_name(f"{out.name}.part{i:05d}") for i in range(st.num_processes)]
        with out.open("w", newline="") as fh:
            csv.DictWriter(fh, fieldnames=list(fields)).writeheader()
            for p in parts:
                fh.write(p.read_text())
                p.unlink()
    st.wait_for_everyone()
    return out


def run_sections(sections: Sequence[T], work: Callable[[T], Any], done: Callable[[T], bool]) -> tuple[int, int]:
    """Run ``work`` on this process's share of ``sections``, skipping those ``done`` says are finished.
    Returns (run, skipped) for this process; all processes meet at a barrier before returning."""
    st = state()
    with st.split_between_processes(list(sections)) as mine:
        mine = list(mine)
    ran = skipped = 0
    for s in mine:
        if done(s):
            skipped += 1
            continue
        work(s)
        ran += 1
    st.wait_for_everyone()
    return ran, skipped


def is_main() -> bool:
    return state().is_main_process
