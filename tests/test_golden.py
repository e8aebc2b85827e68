"""Golden outputs: what the shared decode layer gives users, written once from a known-good main.

Every record, table and artifact of the commands below must keep its fields and values while the
decode layer is rebuilt underneath them (issue 29). The golden files under tests/golden/ were
written by `HALLUC_WRITE_GOLDEN=1 python -m pytest tests/test_golden.py`; without that variable
this test compares. Floats agree to 1e-9 on the machine (torch and transformers versions) that
wrote them; elsewhere to 1e-5, since another CPU's kernels round float32 differently.
"""

from __future__ import annotations

import json
import math
import os
import platform
from pathlib import Path

import pytest

from ucli.testing import QUESTIONS

GOLDEN = Path(__file__).parent / "golden"
WRITE = os.environ.get("HALLUC_WRITE_GOLDEN") == "1"
# What changes from run to run and is not an output of the decode: times, versions, argv, and the
# hashes of files that hold those (a table's sidecar hash, the hash of an input artifact).
VOLATILE = {
    "created_utc",
    "argv",
    "halluc_version",
    "latency_s",
    "avg_latency_s",
    "elapsed_seconds",
    "sha256",
    "heads_sha256",
}
TEXTS = ["The capital of France is Paris.", "Gold has the symbol Au.", "Jupiter is the largest planet."]


def machine() -> dict:
    import torch
    import transformers

    return {"torch": torch.__version__, "transformers": transformers.__version__,
            "cpu": platform.processor() or platform.machine()}  # fmt: skip


def normalized(value, roots: dict[str, str]):
    """The output without what may differ between two runs of the same code: volatile keys dropped,
    this run's temporary folders named by role."""
    if isinstance(value, dict) and "inputs" in value and isinstance(value["inputs"], dict):
        value = {
            **value,
            "inputs": {k: "<artifact>" if k.endswith(".json") else v for k, v in value["inputs"].items()},
        }
    if isinstance(value, dict):
        return {normalized(k, roots): normalized(v, roots) for k, v in value.items() if k not in VOLATILE}
    if isinstance(value, list):
        return [normalized(v, roots) for v in value]
    if isinstance(value, str):
        for root, name in roots.items():
            value = value.replace(root, name)
    return value


def read_output(path: Path):
    if path.suffix == ".jsonl":
        return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    if path.suffix == ".json":
        return json.loads(path.read_text())
    raise AssertionError(f"no reader for {path}")


def zarr_summary(folder: Path) -> dict:
    """Each stored array of a trace run as its shape and float64 sum and sum of squares."""
    import numpy as np
    import zarr

    root = zarr.open_group(str(folder), mode="r")
    out = {}
    for name, arr in sorted(root.arrays(), key=lambda kv: kv[0]):
        data = np.asarray(arr[...], dtype=np.float64)
        out[name] = {"shape": list(data.shape), "sum": float(data.sum()), "sumsq": float((data**2).sum())}
    for name in sorted(root.group_keys()):
        out[name] = zarr_summary(folder / name)
    return out


def assert_same(got, want, where: str, tol: float) -> None:
    if isinstance(want, float) or (isinstance(got, float) and isinstance(want, int)):
        assert isinstance(got, (int, float)) and not isinstance(got, bool), f"{where}: {got!r} != {want!r}"
        both_nan = math.isnan(got) and math.isnan(want)
        assert both_nan or math.isclose(got, want, rel_tol=tol, abs_tol=tol), f"{where}: {got!r} != {want!r}"
    elif isinstance(want, dict):
        assert isinstance(got, dict) and sorted(got) == sorted(want), (
            f"{where}: keys {sorted(got) if isinstance(got, dict) else got!r} != {sorted(want)}"
        )
        for k in want:
            assert_same(got[k], want[k], f"{where}.{k}", tol)
    elif isinstance(want, list):
        assert isinstance(got, list) and len(got) == len(want), f"{where}: {got!r} != {want!r}"
        for i, (g, w) in enumerate(zip(got, want, strict=True)):
            assert_same(g, w, f"{where}[{i}]", tol)
    else:
        assert got == want, f"{where}: {got!r} != {want!r}"


def check(name: str, outputs: dict[str, object]) -> None:
    """Compare (or, when writing, store) one case's normalized outputs."""
    path = GOLDEN / f"{name}.json"
    if WRITE:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(
            json.dumps({"machine": machine(), "outputs": outputs}, indent=1, sort_keys=True) + "\n"
        )
        return
    assert path.is_file(), f"{path}: no golden file (write it with HALLUC_WRITE_GOLDEN=1 on main)"
    golden = json.loads(path.read_text())
    tol = 1e-9 if golden["machine"] == machine() else 1e-5
    assert_same(outputs, golden["outputs"], name, tol)


def run(cli, *args) -> None:
    res = cli(*args)
    assert res.exit_code == 0, (args[:2], res.stderr[-3000:])


def collect(folder: Path, roots: dict[str, str]) -> dict:
    out = {}
    for path in sorted(folder.rglob("*")):
        if any(part.endswith(".zarr") for part in path.relative_to(folder).parts[:-1]):
            continue
        if path.suffix in {".json", ".jsonl"}:
            out[str(path.relative_to(folder))] = normalized(read_output(path), roots)
        elif path.suffix == ".zarr" and path.is_dir():
            out[str(path.relative_to(folder))] = zarr_summary(path)
    return out


@pytest.fixture(scope="module")
def work(tmp_path_factory):
    d = tmp_path_factory.mktemp("golden")
    (d / "q.jsonl").write_text("".join(json.dumps({"id": f"q{i}", "prompt": q, "reference": a}) + "\n"
                                       for i, (q, a) in enumerate(QUESTIONS)))  # fmt: skip
    (d / "texts.txt").write_text("\n".join(TEXTS) + "\n")
    return d


def decode_cases(cli, model: str, d: Path, data: list[str], calibration: Path, limit: list[str]) -> None:
    """calibrate heads/threshold/score, control eval (cot, abstain), uq score (all estimators, K=3),
    probe generate (K=3): the outputs of every part of the shared decode layer, in `d`."""
    m = ["-m", model, "--device", "cpu"]
    run(cli, "calibrate", "heads", *m, "--calibration", calibration, "-o", d / "heads.json")
    run(cli, "calibrate", "threshold", *m, "--calibration", calibration, "--heads", d / "heads.json",
        "--labels", "teacher-forced", "-o", d / "theta.json")  # fmt: skip
    run(cli, "calibrate", "score", *m, "-d", calibration,
        "--heads", d / "heads.json", "--max-new-tokens", 12, "-o", d / "scores.jsonl")  # fmt: skip
    control = [
        *m,
        "--heads",
        d / "heads.json",
        "--threshold",
        d / "theta.json",
        "--max-new-tokens",
        24,
        *limit,
    ]
    run(cli, "control", "eval", *data, *control, "--repair", "cot", "--theta", "0.5", "--baseline",
        "--rollback-mode", "fixed", "--rollback", 2, "--cot-length", 6, "--cot-min-tokens", 2,
        "-o", d / "cot")  # fmt: skip
    run(cli, "control", "eval", *data, *control, "--repair", "abstain", "--theta", "0.5", "-o", d / "abstain")
    run(cli, "uq", "score", *data, *m, "--estimators", "all", "--samples", 3, "--max-new-tokens", 12,
        "--heads", d / "heads.json", *limit, "-o", d / "uq.jsonl")  # fmt: skip
    run(cli, "probe", "generate", *data, *m, "--samples", 3, "--max-new-tokens", 12, *limit,
        "-o", d / "runs.jsonl")  # fmt: skip


def test_tiny_model_outputs_are_unchanged(cli, tiny_llama, work):
    d = work / "tiny"
    d.mkdir()
    from ucli.generation import generate
    from ucli.models import load_model

    # half the references are the model's own greedy answers, so token labels hold both classes
    lm = load_model(str(tiny_llama), device="cpu")
    own = [q for q, _ in QUESTIONS[:3]]
    greedy = [g["answer"] for g in generate(lm, [lm.chat_prompt(q) for q in own], 8)]
    (d / "cal.jsonl").write_text("".join(json.dumps({"prompt": q, "reference": a}) + "\n"
                                         for q, a in [*zip(own, greedy, strict=True), *QUESTIONS[3:]]))  # fmt: skip
    data = ["-b", "local", "--data-file", work / "q.jsonl"]
    decode_cases(cli, str(tiny_llama), d, data, d / "cal.jsonl", [])
    run(cli, "trace", "extract", "-m", tiny_llama, "--device", "cpu", "--data", work / "texts.txt",
        "--capture", "attn,hidden", "--store-dtype", "float32", "-o", d / "trace")  # fmt: skip
    check("tiny", collect(d, {str(tiny_llama): "<model>", str(work): "<work>"}))


@pytest.mark.slow
def test_smollm2_slice_outputs_are_unchanged(cli, smollm2, work):
    d = work / "smollm2"
    d.mkdir()
    run(cli, "benchmarks", "export", "facts", "--split", "train", "--limit", 6, "-o", d / "cal.jsonl")
    decode_cases(cli, "smollm2-135m", d, ["-b", "facts", "--split", "test"], d / "cal.jsonl",
                 ["--limit", "3"])  # fmt: skip
    from ucli.models import packaged_path

    # where pip put the packaged model differs from one environment to the next
    check(
        "smollm2", collect(d, {str(work): "<work>", str(packaged_path("smollm2-135m")): "<packaged model>"})
    )
