"""The option vocabulary: options many commands share, defined once so that every command spells
them the same way with one meaning and one type (tests/test_vocabulary.py walks the whole app).

Factories take the per-command default or help where those differ; the name, type and meaning do
not. Renamed spellings keep working for one release through `renamed`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, TypeVar

import typer

from ucli.executor import EXECUTORS, REPLICA_EXECUTORS, SLURM_MINUTES

M = TypeVar("M")

JSON = typer.Option(False, "--json", help="Print machine-readable JSON on stdout and nothing else there.")
DEFAULT_MODEL = "smollm2-135m"  # = ucli.models.DEFAULT_MODEL (tested), spelled here to keep --help light
MODEL = typer.Option(
    DEFAULT_MODEL, "--model", "-m", help="Model spec: alias, hub id, local folder or .gguf file."
)


DEVICE = typer.Option("auto", "--device", help="auto, cpu, cuda, cuda:N or mps.")
DTYPE = typer.Option("auto", "--dtype", help="auto, float32, float16 or bfloat16 (auto: bf16/fp16 on CUDA).")
LOAD_4BIT = typer.Option(False, "--load-in-4bit", help="Load the model in 4-bit NF4 (bitsandbytes, CUDA).")
LOAD_8BIT = typer.Option(False, "--load-in-8bit", help="Load the model in 8-bit (bitsandbytes, CUDA).")
ADAPTER = typer.Option(
    None,
    "--adapter",
    help="A PEFT adapter folder to apply to the model (repeat where a command compares several).",
)
SEED = typer.Option(0, "--seed", help="Random seed (sampling, shuffling for --limit, bootstrap).")
RESUME = typer.Option(
    False, "--resume", help="Continue an interrupted run in --output, skipping finished work."
)
FORCE = typer.Option(
    False,
    "--force",
    help="Replace an output file that exists (with --resume: go on although the configuration changed).",
)


# Sampling K answers per question (`probe generate`, `uq score`). `minimum`: what the command always
# needs; `uq score` checks its own (2, and only when a chosen estimator samples).
def samples(default: int, help: str = "Sampled answers per question (K).", minimum: int | None = None) -> Any:
    return typer.Option(default, "--samples", min=minimum, help=help)


def temperature(default: float) -> Any:
    return typer.Option(default, "--temperature", help="Sampling temperature (> 0).")


TOP_P = typer.Option(0.9, "--top-p", help="Nucleus sampling mass, in (0, 1].")

# When two sampled answers mean the same (`probe entropy`, `uq score`): `halluc_probe.make_judge`.
EQUIVALENCE = typer.Option("embedding", "--equivalence", help="nli, embedding (offline default) or exact.")
NLI_MODEL = typer.Option(None, "--nli-model", help="NLI sequence-classification model (nli).")
BIDIRECTIONAL = typer.Option(False, "--bidirectional", help="nli: both directions must entail.")
MIN_SIMILARITY = typer.Option(
    0.9, "--min-similarity", help="embedding: cosine similarity that makes two answers one."
)
EMBEDDING_MODEL = typer.Option(
    None,
    "--embedding-model",
    help="embedding: encoder folder or hub id (default all-MiniLM-L6-v2, packaged).",
)


def load_options(
    *, device: str, dtype: str, load_in_4bit: bool, load_in_8bit: bool, adapter: Any = None
) -> Any:
    """The `LoadOptions` of the load knobs above (every model-loading command takes all five), a
    bad value refused as one line naming its option."""
    from ucli.models import LoadOptions

    return validated(
        LoadOptions, device=device, dtype=dtype, load_in_4bit=load_in_4bit, load_in_8bit=load_in_8bit,
        adapter=str(adapter) if adapter else None,
    )  # fmt: skip


def output(help: str, required: bool = False) -> Any:
    """`--output/-o`: where the command writes its result (a file or a folder, per command)."""
    return typer.Option(... if required else None, "--output", "-o", help=help)


def limit(help: str = "N items, drawn with --seed (default: all, in file order).") -> Any:
    """`--limit`: the one rule of `ucli.data.select`."""
    return typer.Option(None, "--limit", min=1, help=help)


def batch_size(default: int, help: str = "Items per forward pass.") -> Any:
    return typer.Option(default, "--batch-size", min=1, help=help)


# What a benchmark is built with (`halluc_benchmarks.get_benchmark` types each -B value by the
# benchmark's own constructor and refuses a key it does not take): every command that reads a
# benchmark offers both, through the BENCHMARK bundle below.
BENCH_DATA_FILE = typer.Option(
    None, "--data-file", help="Local data file of a benchmark (local; or a local copy of a hub data set)."
)
BENCH_OPTION = typer.Option(
    None,
    "--benchmark-option",
    "-B",
    metavar="<key=value>",
    help="A benchmark's own option as key=value, repeated (arith: steps, size; local: metric); "
    "`halluc benchmarks show NAME` lists them.",
)
CORRECT_IF = typer.Option(
    None,
    "--correct-if",
    metavar="<measure op number>",
    help="Verdict rule: a quality measure and its threshold, e.g. rouge_l>=0.3 or f1>=0.5 "
    "(default: the benchmark's own; `halluc benchmarks measures` lists them).",
)
JUDGE = typer.Option(
    None,
    "--judge",
    metavar="<backend:model[@url]>",
    help="An LLM judge of correctness (repeat for a panel), e.g. openai:gpt-4o-mini or hf:smollm2-135m; "
    "verdicts become judge>0.5 unless --correct-if says otherwise. Keys come from the environment.",
)
JUDGE_PROMPT = typer.Option(
    None,
    "--judge-prompt",
    metavar="<name>",
    help="How judges are asked: semantic-entropy (default) or simpleqa.",
)
JUDGE_COMBINE = typer.Option(
    None, "--judge-combine", metavar="<rule>", help="A panel's verdict: majority (default; ties 0.5) or mean."
)
JUDGE_RPM = typer.Option(
    None,
    "--judge-rpm",
    metavar="<float>",
    help="Requests per minute to each judge (default 60), with 4 in flight.",
)
# A model reached through a generation backend (`halluc plugins` lists them), as a pilot reaches it.
BACKEND = typer.Option(
    None,
    "--backend",
    metavar="<name>",
    help="Ask the model through this backend (openai, anthropic, gemini, vllm, hf, or a plugin's) instead of "
    "loading it: --model is then the backend's model id, the key comes from its environment variable.",
)
BASE_URL = typer.Option(
    None, "--base-url", metavar="<url>", help="The backend's server (an OpenAI-compatible vLLM, ...)."
)
RPM = typer.Option(
    60.0, "--rpm", min=0.001, help="Requests per minute to the model (every request, the judge's too)."
)
CONCURRENCY = typer.Option(4, "--concurrency", min=1, help="Requests in flight at once.")
MAX_RETRIES = typer.Option(
    3, "--max-retries", min=0, help="Retries of a failed request (429, 5xx, timeouts)."
)
REQUEST_TIMEOUT = typer.Option(None, "--timeout", min=1.0, help="Seconds one request may take (default 60).")

# the spellings before -B, per command that reads a benchmark (`renamed`)
BENCH_RENAMED = {f"--{k} <value>": f"-B {k}=<value>" for k in ("steps", "size", "metric")}

# (command path) -> {old spelling: new spelling}; plugins register theirs when their CLI imports
RENAMED: dict[str, dict[str, str]] = {}
# Values an old spelling may name by kind: `"--limit <fraction>": "--limit-fraction <fraction>"` is
# `--limit` given a share (0.1, lm-eval's old reading), renamed with its value kept.
VALUE_KINDS = {"<fraction>": r"0?\.\d+", "<value>": r".*"}


def renamed(command: str, spellings: dict[str, str]) -> None:
    """Old spellings of `command`'s options that still work for one release, with a notice: an
    option, an option with one value (`--batch-size auto`), or with a kind of value (`<fraction>`)."""
    RENAMED.setdefault(command, {}).update(spellings)


def _with_value(table: dict[str, str], name: str, value: str | None) -> list[str] | None:
    """The new words when `name value` is a renamed spelling with a value (None: it is not)."""
    import re

    for old, new in table.items():
        option, _, wanted = old.partition(" ")
        if option != name or not wanted or value is None:
            continue
        if wanted == value:
            return [new]
        if wanted in VALUE_KINDS and re.fullmatch(VALUE_KINDS[wanted], value):
            return new.replace(wanted, value).split(" ", 1)
    return None


def rewrite_renamed(args: list[str]) -> list[str]:
    """The command line with renamed spellings replaced (a one-line notice each); `args` is the
    whole command line below `halluc`, global options included."""
    words = [a for a in args if not a.startswith("-")]
    path = next(
        (p for p in sorted(RENAMED, key=len, reverse=True) if words[: len(p.split())] == p.split()), None
    )
    if path is None:
        return args
    table, out, told = RENAMED[path], [], set()
    with_values = {k.partition(" ")[0] for k in table if " " in k}
    pairs = iter(args)
    for arg in pairs:
        name, eq, value = arg.partition("=")
        if arg.startswith("-") and name in table:
            old, shown, new = name, table[name], [table[name] + eq + value]
        elif arg.startswith("-") and name in with_values:
            following = value if eq else next(pairs, None)
            new = _with_value(table, name, following)
            if new is None:  # not a renamed value: both words stay as they were
                out.extend([arg] if eq or following is None else [arg, following])
                continue
            old, shown = f"{name} {following}", " ".join(new)
        else:
            out.append(arg)
            continue
        if name not in told:
            from ucli import console

            console.warn(f"`{path} {old}` is now `{shown}`; the old spelling goes in the next release")
            told.add(name)
        out.extend(new)
    return out


def validated(config_cls: type[M], names: dict[str, str] | None = None, /, **knobs: Any) -> M:
    """A pydantic config built from command options; the first bad knob becomes one line naming
    its option (`--max-seq-len: ...`; `names` maps a field to its option where the command spells
    it otherwise, e.g. `k` -> `--samples`)."""
    from pydantic import ValidationError

    from ucli.errors import invalid

    try:
        return config_cls(**knobs)
    except ValidationError as exc:
        raise invalid(exc, style="option", names=names) from None


# Scale-out (`ucli.executor`): where the model work of a heavy command runs.
EXECUTOR = typer.Option(
    "local",
    "--executor",
    help="local (this process), ray (model replicas on Ray) or slurm (eval run: a SLURM job array).",
)
WORKERS = typer.Option(1, "--workers", help="Model replicas (ray), or array jobs at once (slurm).")
GPUS_PER_WORKER = typer.Option(
    0.0, "--gpus-per-worker", help="GPUs each replica or array job takes (0: CPU)."
)
RAY_ADDRESS = typer.Option(
    None, "--ray-address", help="Join a running Ray cluster: auto or HOST:PORT (default: start one here)."
)
SLURM_PARTITION = typer.Option(
    None, "--slurm-partition", help="SLURM partition of the array jobs (default: the cluster's)."
)
SLURM_TIME = typer.Option(SLURM_MINUTES, "--slurm-time", help="Minutes each SLURM array job may run.")


# Option bundles: a block of options declared once and attached to a command as one parameter.
class Bundle:
    """Options that travel together (the load knobs, the executor knobs, a component's knobs): a
    command names the bundle as one parameter (`load: Any = options.LOAD`) and gets what `build`
    makes of them; `bundled` puts each option in the bundle's place in the signature, so `--help`
    and the vocabulary walk see every option."""

    def __init__(self, build: Any, /, **knobs: tuple[Any, Any]) -> None:
        self.build, self.knobs = build, knobs  # name -> (annotation, typer.Option)

    def without(self, *names: str) -> Bundle:
        """The bundle less some options (a command that takes them otherwise)."""
        return Bundle(self.build, **{k: v for k, v in self.knobs.items() if k not in names})

    def parameters(self) -> list[Any]:
        import inspect

        keyword = inspect.Parameter.KEYWORD_ONLY
        return [inspect.Parameter(k, keyword, default=d, annotation=a) for k, (a, d) in self.knobs.items()]


def bundled(command: Any) -> Any:
    """`command` with each parameter whose default is a `Bundle` spread into the bundle's options
    (in its place) and rebuilt into one value before the body runs."""
    import collections
    import functools
    import inspect

    found, params = {}, []
    for name, p in inspect.signature(command).parameters.items():
        if isinstance(p.default, Bundle):
            found[name] = p.default
            params.extend(p.default.parameters())
        else:  # a string annotation stays one: typer resolves it in `command`'s module (`__wrapped__`)
            params.append(p.replace(kind=inspect.Parameter.KEYWORD_ONLY))
    clash = [n for n, c in collections.Counter(p.name for p in params).items() if c > 1]
    if clash:
        raise TypeError(f"{command.__qualname__}: {', '.join(clash)} is its own option and a bundle's")

    @functools.wraps(command)
    def run(**kwargs: Any) -> Any:
        for name, bundle in found.items():
            kwargs[name] = bundle.build(**{k: kwargs.pop(k) for k in bundle.knobs})
        return command(**kwargs)

    run.__signature__ = inspect.Signature(params)  # type: ignore[attr-defined]
    run.__annotations__ = {p.name: p.annotation for p in params}
    return run


def _benchmark_options(data_file: Any, benchmark_option: list[str] | None, **rules: Any) -> dict[str, Any]:
    """--data-file, the verdict rule and judges, and the -B key=value pairs as one dict (each
    benchmark types and checks its own)."""
    from ucli.errors import BadInput

    given: dict[str, Any] = {"data_file": data_file} if data_file is not None else {}
    given.update({k: v for k, v in rules.items() if v})
    for pair in benchmark_option or []:
        key, eq, value = pair.partition("=")
        if not eq or not key.strip():
            raise BadInput(f"-B {pair}: expected key=value (e.g. -B steps=4)")
        name = key.strip().replace("-", "_")
        if name in given:
            raise BadInput(f"-B {pair}: {key.strip()} is given twice")
        given[name] = value
    return given


def _executor(
    *, executor: str, workers: int, gpus_per_worker: float, ray_address: str | None,
    slurm_partition: str | None = None, slurm_time: int = SLURM_MINUTES, allowed: tuple[str, ...] = REPLICA_EXECUTORS,
) -> Any:  # fmt: skip
    """The executor the scale-out options name (`ucli.executor.Executor`), checked; `allowed`: the
    executors the command runs on (model replicas: local or ray; `eval run` also slurm)."""
    from ucli.executor import Executor

    return Executor(kind=executor, workers=workers, gpus_per_worker=gpus_per_worker, ray_address=ray_address,
                    slurm_partition=slurm_partition, slurm_time=slurm_time, allowed=allowed)  # fmt: skip


LOAD = Bundle(
    load_options,
    device=(str, DEVICE),
    dtype=(str, DTYPE),
    load_in_4bit=(bool, LOAD_4BIT),
    load_in_8bit=(bool, LOAD_8BIT),
    adapter=(Path | None, ADAPTER),
)
SCALE_OUT = Bundle(
    _executor,
    executor=(str, EXECUTOR),
    workers=(int, WORKERS),
    gpus_per_worker=(float, GPUS_PER_WORKER),
    ray_address=(str | None, RAY_ADDRESS),
)
# `eval run`: also a SLURM job array
SCALE_OUT_SLURM = Bundle(
    lambda **knobs: _executor(**knobs, allowed=EXECUTORS),
    **SCALE_OUT.knobs,
    slurm_partition=(str | None, SLURM_PARTITION),
    slurm_time=(int, SLURM_TIME),
)
API = Bundle(
    lambda **knobs: knobs,
    backend=(str | None, BACKEND),
    base_url=(str | None, BASE_URL),
    rpm=(float, RPM),
    concurrency=(int, CONCURRENCY),
    max_retries=(int, MAX_RETRIES),
    timeout=(float | None, REQUEST_TIMEOUT),
)
BENCHMARK = Bundle(
    _benchmark_options,
    data_file=(Path | None, BENCH_DATA_FILE),
    benchmark_option=(list[str] | None, BENCH_OPTION),
    correct_if=(str | None, CORRECT_IF),
    judge=(list[str] | None, JUDGE),
    judge_prompt=(str | None, JUDGE_PROMPT),
    judge_combine=(str | None, JUDGE_COMBINE),
    judge_rpm=(float | None, JUDGE_RPM),
)
