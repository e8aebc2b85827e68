"""Scale-out (issue 20): model replicas on Ray give the records of a single process, lose nothing
when a worker or the driver dies, and count nothing twice."""

import json
import os

import numpy as np
import pyarrow.parquet as pq
import pytest

from ucli.errors import BadInput
from ucli.testing import require


@pytest.fixture(scope="module")
def ray_session():
    """One Ray session for the module, as on a laptop: 2 CPUs, real worker processes."""
    require("ray", "pip install 'halluc[ray]'")
    import ray

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray
    ray.shutdown()


@pytest.fixture(scope="module")
def prompts(tmp_path_factory):
    data = tmp_path_factory.mktemp("scale") / "q.jsonl"
    rows = [{"id": f"q{i}", "prompt": f"Name colour number {i}.", "reference": "red"} for i in range(7)]
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return data


@pytest.fixture
def one_thread():
    """The replicas here run at one torch thread each (2 CPUs, 2 workers); the single process does too,
    because float reductions depend on the thread count (1e-9 apart otherwise)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture
def kill_driver(monkeypatch):
    """`kill_driver(n)`: the driver journals n more records, then is interrupted as by Ctrl-C;
    `kill_driver(None)` lets it run again."""
    from ucli.journal import Journal

    real = Journal.append

    def arm(after):
        written = []

        def dies(self, record):
            if len(written) == after:
                raise KeyboardInterrupt
            written.append(record["id"])
            return real(self, record)

        monkeypatch.setattr(Journal, "append", real if after is None else dies)

    return arm


def _score(cli, tiny, data, out, *extra):
    res = cli("calibrate", "score", "--data", data, "-m", tiny, "--device", "cpu", "--max-new-tokens", 4,
              "--batch-size", 2, "-o", out, *extra)  # fmt: skip
    return res


def _records(path):
    return [json.loads(x) for x in path.read_text().splitlines()]


def test_ray_replicas_give_the_single_process_records(
    cli, tiny_llama, prompts, tmp_path, ray_session, one_thread, monkeypatch
):
    """The driver holds a shell of the model (no weights); the replicas decode; the records and the
    provenance equal a single process's."""
    from ucli import models

    real, driver_loads = models.load_model, []

    def spy(*args, **kwargs):
        driver_loads.append(kwargs.get("weights", True))
        return real(*args, **kwargs)

    local, scaled = tmp_path / "local.jsonl", tmp_path / "ray.jsonl"
    assert _score(cli, tiny_llama, prompts, local).exit_code == 0
    monkeypatch.setattr(models, "load_model", spy)
    res = _score(cli, tiny_llama, prompts, scaled, "--executor", "ray", "--workers", 2)
    assert res.exit_code == 0, res.stderr
    assert driver_loads == [False]  # the replicas' own loads happen in their processes
    assert _records(scaled) == _records(local)  # record for record, in the prompts' order
    meta = {
        n: json.loads((tmp_path / f"{n}.jsonl.meta.json").read_text())["provenance"] for n in ("local", "ray")
    }
    assert meta["ray"]["model"] == meta["local"]["model"]  # the replicas ran the model the driver names


def test_a_killed_worker_is_restarted_and_its_batch_retried(
    tiny_llama, prompts, tmp_path, ray_session, one_thread
):
    """A replica that dies mid-batch (the process exits) loses nothing: Ray restarts it and runs the
    batch again; the driver journals each batch once."""
    from halluc_signals.decode import score_batch
    from ucli.data import PromptPair
    from ucli.executor import Executor, Replicas
    from ucli.models import LoadOptions, load_model

    marker = tmp_path / "died"

    def dies_once(lm, batch, *args):
        if batch[0].id == "q2" and not marker.exists():
            marker.write_text("")
            os._exit(1)
        return score_batch(lm, batch, *args)

    load = LoadOptions(device="cpu")
    pairs = [PromptPair(id=f"q{i}", prompt=f"Say {i}.", reference=None) for i in range(6)]
    batches = [pairs[i : i + 2] for i in range(0, 6, 2)]
    args = ([1, 2], 0.5, None, None, 3)
    lm = load_model(str(tiny_llama), load)
    want = [r for b in batches for r in score_batch(lm, b, *args)]
    with Replicas(Executor(kind="ray", workers=2), lm, load_model, str(tiny_llama), load) as replicas:
        got = [r for records in replicas.map(dies_once, batches, *args) for r in records]
    assert marker.exists()  # a worker did die
    assert sorted(got, key=lambda r: r["id"]) == want


def test_a_killed_driver_resumes_on_ray_to_the_uninterrupted_records(
    cli, tiny_llama, prompts, tmp_path, ray_session, kill_driver, one_thread
):
    local = tmp_path / "local.jsonl"
    assert _score(cli, tiny_llama, prompts, local).exit_code == 0
    kill_driver(3)
    out = tmp_path / "scaled.jsonl"
    assert _score(cli, tiny_llama, prompts, out, "--executor", "ray", "--workers", 2).exit_code != 0
    assert not out.exists()
    kill_driver(None)
    res = _score(cli, tiny_llama, prompts, out, "--executor", "ray", "--workers", 2, "--resume")
    assert res.exit_code == 0, res.stderr
    records = _records(out)
    assert [r["id"] for r in records] == [f"q{i}" for i in range(7)]  # none missing, none twice
    assert records == _records(local)


def test_executor_options_are_checked_before_any_model_loads(cli, prompts, tmp_path):
    from ucli.executor import Executor

    res = cli("calibrate", "score", "--data", prompts, "-o", tmp_path / "o.jsonl", "--executor", "dask")
    assert (
        res.exit_code == 2
        and "--executor: unknown executor 'dask' (expected one of: local, ray)" in res.stderr
    )
    res = cli("calibrate", "score", "--data", prompts, "-o", tmp_path / "o.jsonl", "--workers", 2)
    assert res.exit_code == 2 and "--workers and --ray-address need --executor ray" in res.stderr
    res = cli("calibrate", "score", "--data", prompts, "-o", tmp_path / "o.jsonl", "--executor", "slurm")
    assert res.exit_code == 2 and "--executor slurm: this command runs on local or ray" in res.stderr
    with pytest.raises(BadInput, match="--workers must be >= 1"):
        Executor(kind="ray", workers=0)
    with pytest.raises(BadInput, match="--slurm-partition needs --executor slurm"):
        Executor(kind="ray", slurm_partition="gpu")
    with pytest.raises(BadInput, match=r"SLURM gives whole GPUs, got 0\.5"):
        Executor(kind="slurm", gpus_per_worker=0.5)


def test_probe_generate_and_trace_on_ray_replicas_give_the_single_process_output(
    cli, tiny_llama, prompts, tmp_path, ray_session, one_thread
):
    """Batches seeded by their start, generated on the replicas, judged and journaled by the driver."""
    args = ("probe", "generate", "--data", prompts, "-m", tiny_llama, "--device", "cpu", "--samples", 3,
            "--batch-size", 2, "--max-new-tokens", 3, "--seed", 5)  # fmt: skip
    local, scaled = tmp_path / "local.jsonl", tmp_path / "ray.jsonl"
    assert cli(*args, "-o", local).exit_code == 0
    res = cli(*args, "-o", scaled, "--executor", "ray", "--workers", 2)
    assert res.exit_code == 0, res.stderr
    assert _records(scaled) == _records(local)
    assert len({s["answer"] for r in _records(local) for s in r["samples"]}) > 1  # sampled, not greedy
    # `probe trace` of those runs: the replicas' hidden states, written by the driver, equal one process's
    import zarr

    trace = ("probe", "trace", "--runs", local, "-m", tiny_llama, "--device", "cpu", "--batch-size", 2)
    assert cli(*trace, "-o", tmp_path / "local.zarr").exit_code == 0
    res = cli(*trace, "-o", tmp_path / "ray.zarr", "--executor", "ray", "--workers", 2)
    assert res.exit_code == 0, res.stderr
    for name in ("tbg", "slt"):
        ours, theirs = (zarr.open_array(str(tmp_path / f"{run}.zarr" / name))[:] for run in ("ray", "local"))
        np.testing.assert_array_equal(ours, theirs)  # NaN where a position is missing, in both


def _untimed(records):
    """Records without their wall-clock latency (the one field two runs never share)."""
    return [{k: v for k, v in r.items() if k != "latency_s"} for r in records]


def test_control_eval_on_ray_gives_the_single_process_records_after_a_killed_driver(
    cli, tiny_llama, prompts, tmp_path, ray_session, one_thread, kill_driver
):
    """Both arms on 2 replicas, the driver killed after three records and resumed: the controller's
    sampled thoughts (seeded by sample id) and every verdict equal a single process's."""

    args = ("control", "eval", "-b", "local", "--data-file", prompts, "-m", tiny_llama, "--device", "cpu",
            "--signal", "entropy", "--theta", 0, "--max-new-tokens", 24, "--cot-length", 3, "--cot-min-tokens", 1,
            "--batch-size", 2, "--baseline")  # fmt: skip
    local, scaled = tmp_path / "local", tmp_path / "ray"
    assert cli(*args, "-o", local).exit_code == 0
    kill_driver(3)
    assert cli(*args, "-o", scaled, "--executor", "ray", "--workers", 2).exit_code != 0
    kill_driver(None)
    res = cli(*args, "-o", scaled, "--executor", "ray", "--workers", 2, "--resume")
    assert res.exit_code == 0, res.stderr
    for arm in ("controller", "baseline"):
        assert _untimed(_records(scaled / f"{arm}.jsonl")) == _untimed(_records(local / f"{arm}.jsonl"))
    events = [e["action"] for r in _records(local / "controller.jsonl") for e in r["trigger_events"]]
    assert "cot" in events  # thoughts were sampled, so the seeds were put to the test


def test_trace_extract_on_ray_survives_a_dead_worker_and_a_killed_driver(
    cli, tiny_llama, tmp_path, ray_session, one_thread, monkeypatch, kill_driver
):
    """The driver creates the arrays; replicas write their own examples' shards (one per example, so
    never two writers in one file). A replica that dies mid-batch and a driver killed after two
    journaled examples, then resumed, still leave the single process's arrays and tokens exactly,
    and `trace index --validate` finds nothing wrong."""
    import zarr

    from halluc_trace import extract

    texts = tmp_path / "texts.txt"
    texts.write_text("".join(f"Line number {i} says{' more' * i}.\n" for i in range(7)))
    args = ("trace", "extract", "-m", tiny_llama, "--data", texts, "--capture", "attn,hidden,resid", "--device",
            "cpu", "--batch-size", 2, "--store-dtype", "float32")  # fmt: skip
    local, scaled = tmp_path / "local", tmp_path / "ray"
    assert cli(*args, "-o", local).exit_code == 0
    marker, real_batch = tmp_path / "died", extract.trace_batch

    def dies_once(tracer, batch):
        if batch[0].index == 2 and not marker.exists():
            marker.write_text("")
            os._exit(1)
        return real_batch(tracer, batch)

    monkeypatch.setattr(extract, "trace_batch", dies_once)
    kill_driver(2)
    assert cli(*args, "-o", scaled, "--executor", "ray", "--workers", 2).exit_code != 0
    kill_driver(None)
    res = cli(*args, "-o", scaled, "--executor", "ray", "--workers", 2, "--resume")
    assert res.exit_code == 0, res.stderr
    assert marker.exists()  # a replica did die
    local_meta, scaled_meta = (json.loads((run / "meta.json").read_text()) for run in (local, scaled))
    assert local_meta.pop("provenance")["model"] == scaled_meta.pop("provenance")["model"]
    assert scaled_meta == local_meta
    for path in local_meta["arrays"]:
        assert np.array_equal(
            zarr.open_array(str(scaled / path))[:], zarr.open_array(str(local / path))[:]
        ), path
    assert pq.read_table(scaled / "tokens.parquet").equals(pq.read_table(local / "tokens.parquet"))
    res = cli("trace", "index", scaled, "--validate", "--json")
    assert res.exit_code == 0 and json.loads(res.stdout)["problems"] == []


def test_eval_run_units_as_ray_tasks_give_the_single_process_cells(
    cli, tiny_llama, adapter, tmp_path, ray_session, monkeypatch
):
    """One Ray task per unit (the base, the adapter), each loading its model once and writing its own
    cells; the cells equal a single-process run's."""
    from pathlib import Path

    repo = Path(__file__).resolve().parents[1]
    monkeypatch.chdir(repo)  # the example tasks name their data files from the repository root
    args = ["eval", "run", "-m", tiny_llama, "--adapter", adapter, "--tasks", "halluc_arc_easy_local", "--limit", 3,
            "--include-path", repo / "examples" / "tasks", "--device", "cpu"]  # fmt: skip
    assert cli(*args, "--root", tmp_path / "local").exit_code == 0
    res = cli(*args, "--root", tmp_path / "ray", "--executor", "ray", "--workers", 2, "--json")
    assert res.exit_code == 0, res.stderr
    assert sorted(r["status"] for r in json.loads(res.stdout)["cells"]) == ["done", "done"]
    for manifest in sorted((tmp_path / "local").rglob("manifest.json")):
        cell = manifest.parent.relative_to(tmp_path / "local")
        ours = json.loads((tmp_path / "ray" / cell / "manifest.json").read_text())["results"]
        theirs = json.loads(manifest.read_text())["results"]
        assert ours["acc,none"] == theirs["acc,none"] and ours["acc_norm,none"] == theirs["acc_norm,none"]


def test_uq_score_on_ray_replicas_gives_the_single_process_records(
    cli, tiny_llama, prompts, tmp_path, ray_session, one_thread
):
    """Every estimator: the greedy decode and the K samples (with their hidden-state Gram matrices)
    on the replicas, the extras and the judge here; the records equal one process's."""
    args = ("uq", "score", "--data", prompts, "-m", tiny_llama, "--device", "cpu", "--max-new-tokens", 3,
            "--batch-size", 2, "--samples", 3, "--seed", 4, "--equivalence", "exact", "--estimators", "all")  # fmt: skip
    local, scaled = tmp_path / "local.jsonl", tmp_path / "ray.jsonl"
    assert cli(*args, "-o", local).exit_code == 0
    res = cli(*args, "-o", scaled, "--executor", "ray", "--workers", 2)
    assert res.exit_code == 0, res.stderr
    records = _records(local)
    assert _records(scaled) == records and all(len(r["samples"]) == 3 and r["sample_gram"] for r in records)


def test_pilot_hf_variants_on_ray_replicas_give_the_single_process_answers(
    cli, tiny_llama, tmp_path, ray_session, one_thread
):
    """A greedy and a sampled variant of a local model, each batch on a replica (seeded as in one
    process); the answers and their log-probabilities equal one process's."""
    prompts = tmp_path / "prompts.json"
    prompts.write_text(json.dumps({"prompts": [{"id": f"p{i}", "text": f"Say {i}."} for i in range(5)]}))
    models = [{"name": "tiny", "type": "hf", "model": str(tiny_llama), "device": "cpu", "max_tokens": 3,
               "batch_size": 2, "temperatures": [0.0, 1.0]}]  # fmt: skip
    config = tmp_path / "pilot.json"
    config.write_text(json.dumps({"prompts_file": str(prompts), "seed": 3, "models": models}))
    assert cli("pilot", "run", "--config", config, "-o", tmp_path / "local").exit_code == 0
    res = cli(
        "pilot",
        "run",
        "--config",
        config,
        "-o",
        tmp_path / "ray",
        "--executor",
        "ray",
        "--workers",
        2,
        "--json",
    )
    assert res.exit_code == 0, res.stderr
    rates = [v["requests_per_minute"] for v in json.loads(res.stdout)["variants"]]
    assert len(rates) == 2 and all(r and r > 0 for r in rates)  # the replicas' answers count as requests
    timing = {"timestamp", "elapsed_seconds", "run_id"}
    for variant in ("tiny__temp0.0", "tiny__temp1.0"):
        ours, theirs = (
            [{k: v for k, v in r.items() if k not in timing} for r in _records(tmp_path / run / "results" / f"{variant}.jsonl")]
            for run in ("ray", "local")
        )  # fmt: skip
        assert ours == theirs and len(ours) == 5


def test_a_replica_spanning_gpus_places_its_model_over_all_of_them(monkeypatch):
    """`--gpus-per-worker K` (K > 1): transformers loads the replica's model with device_map "auto"
    over its K GPUs, and vLLM runs tensor-parallel over them unless the config says otherwise; one
    GPU or the CPU keeps the single-device placement. (Checked here without a GPU: the placement
    and the engine arguments; the load itself is a GPU-machine check, docs/scale.md.)"""
    import sys
    import types

    from halluc_backends.vllm_engine import VLLMBackend
    from ucli.executor import Executor
    from ucli.models import device_map, spanning_gpus

    assert device_map("cuda", quantized=False) is None and device_map("cuda", quantized=True) == "auto"
    with spanning_gpus(2):
        assert device_map("cuda", quantized=False) == device_map("cuda", quantized=True) == "auto"
        assert device_map("cpu", quantized=False) is None
    engines = []
    fake = types.ModuleType("vllm")
    fake.LLM = lambda **kw: engines.append(kw) or object()
    monkeypatch.setitem(sys.modules, "vllm", fake)
    with spanning_gpus(4):
        VLLMBackend("m").llm()
        VLLMBackend("m", tensor_parallel_size=2).llm()
    VLLMBackend("m").llm()
    assert [e["tensor_parallel_size"] for e in engines] == [4, 2, 1]
    assert Executor(kind="ray", workers=2, gpus_per_worker=2).gpus_per_worker == 2
    with pytest.raises(BadInput, match=r"must be whole GPUs, got 1\.5"):
        Executor(kind="ray", gpus_per_worker=1.5)


def test_a_driver_shell_has_the_fingerprint_of_the_real_load(tiny_llama, tiny_qwen2, adapter, smollm2):
    """What a scaled-out driver loads (`weights=False`): tokenizer, config and the same fingerprint,
    with every parameter on the meta device (no memory)."""
    from ucli.models import load_model

    for spec, extra in (
        (tiny_llama, {}),
        (tiny_qwen2, {}),
        (tiny_llama, {"adapter": str(adapter)}),
        ("smollm2-135m", {}),
    ):
        real = smollm2 if spec == "smollm2-135m" else load_model(str(spec), device="cpu", **extra)
        shell = load_model(str(spec), device="cpu", weights=False, **extra)
        assert shell.fingerprint == real.fingerprint, spec
        assert shell.device == "meta" and {p.device.type for p in shell.model.parameters()} == {"meta"}
        assert shell.tokenizer("Say 3.")["input_ids"] == real.tokenizer("Say 3.")["input_ids"]
