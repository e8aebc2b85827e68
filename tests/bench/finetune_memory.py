"""Peak memory and samples/s of a QLoRA training step against the same LoRA in full precision.

Run: python tests/bench/finetune_memory.py [--model smollm2-135m] [--steps 6] [--batch-size 4].
Each configuration runs in its own process (peak memory is per process): CUDA reports
`torch.cuda.max_memory_allocated`, CPU the process's peak RSS. 4-bit NF4 needs CUDA, so on a CPU
machine only the full-precision row is measured and the QLoRA row says so; run it on a GPU machine
for the ratio.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def one(args: argparse.Namespace) -> dict:
    import resource

    import torch

    from halluc_finetune.qlora import train_qlora
    from halluc_finetune.recipe import QLoRARecipe

    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "d.jsonl"
        data.write_text("".join(json.dumps({"prompt": f"Say the number {i} in words.", "completion": f"The number is {i}."}) + "\n"
                                for i in range(64)))  # fmt: skip
        recipe = QLoRARecipe(base_model=args.model, quantization=args.one, data_file=str(data), max_steps=args.steps,
                             batch_size=args.batch_size, save_steps=10_000, lora_r=16,
                             target_modules=["q_proj", "k_proj", "v_proj", "o_proj"], max_seq_length=128)  # fmt: skip
        start = time.monotonic()
        train_qlora(recipe=recipe, output=Path(tmp) / "out", device=args.device)
        seconds = time.monotonic() - start
    cuda = torch.cuda.is_available() and args.device != "cpu"
    peak = (
        torch.cuda.max_memory_allocated()
        if cuda
        else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    )
    return {
        "samples_per_s": args.steps * args.batch_size / seconds,
        "peak_bytes": peak,
        "device": "cuda" if cuda else "cpu",
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", default="smollm2-135m")
    parser.add_argument("--steps", type=int, default=6)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--one", choices=["nf4", "none"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(one(args)))
        return 0
    from ucli import console

    rows, results = [], {}
    for quant in ("none", "nf4"):
        done = subprocess.run([sys.executable, __file__, "--one", quant, "--model", args.model, "--steps", str(args.steps),
                               "--batch-size", str(args.batch_size), "--device", args.device],
                              capture_output=True, text=True)  # fmt: skip
        if done.returncode != 0:
            reason = (done.stderr.strip().splitlines() or ["failed"])[-1]
            rows.append(
                ("QLoRA (4-bit NF4)" if quant == "nf4" else "LoRA (full precision)", "-", "-", reason[:90])
            )
            continue
        r = results[quant] = json.loads(done.stdout.strip().splitlines()[-1])
        rows.append(("QLoRA (4-bit NF4)" if quant == "nf4" else "LoRA (full precision)",
                     f"{r['samples_per_s']:.2f}", f"{r['peak_bytes'] / 2**20:.0f} MiB", r["device"]))  # fmt: skip
    console.out.print(console.table(f"{args.model}, {args.steps} steps x batch {args.batch_size}",
                                    ["", "samples/s", "peak memory", "note"], rows))  # fmt: skip
    if len(results) == 2:
        a, b = results["nf4"], results["none"]
        console.out.print(f"QLoRA / LoRA: memory {a['peak_bytes'] / b['peak_bytes']:.2f}x, "
                          f"speed {a['samples_per_s'] / b['samples_per_s']:.2f}x")  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
