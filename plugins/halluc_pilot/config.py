"""Pilot configs: the seed's JSON shape, or the same in TOML, with `${ENV}` expansion at load time."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ucli.errors import BadInput, invalid

ENV_REFERENCE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


class ModelConfig(BaseModel):
    """One model; every field left out falls back to the run-wide value."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1)
    type: str = Field(min_length=1)
    model: str | None = None  # the backend's model id or spec (default: name)
    temperature: float | None = Field(None, ge=0)
    temperatures: list[float] | None = Field(None, min_length=1)
    top_p: float | None = Field(None, gt=0, le=1)
    max_tokens: int | None = Field(None, ge=1)
    requests_per_minute: float | None = Field(None, gt=0)
    tokens_per_minute: float | None = Field(None, gt=0)
    concurrency: int | None = Field(None, ge=1)
    base_url: str | None = None
    timeout: float | None = Field(None, gt=0)
    api_key: str | None = None
    device: str | None = None
    load_in_4bit: bool = False
    load_in_8bit: bool = False
    adapter: str | None = None
    batch_size: int = Field(8, ge=1)
    top_logprobs: int = Field(5, ge=0, le=20)
    tensor_parallel_size: int | None = Field(None, ge=1)  # vllm: GPUs one engine spans

    def temperature_list(self) -> list[float]:
        if self.temperatures is not None:
            if any(t < 0 for t in self.temperatures):
                raise BadInput(f"model '{self.name}': temperatures must be >= 0")
            return list(dict.fromkeys(self.temperatures))
        return [self.temperature if self.temperature is not None else 0.0]


class PilotConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    prompts_file: str | None = None
    output_dir: str = "pilot_runs"
    seed: int = 0
    max_retries: int = Field(3, ge=0)
    requests_per_minute: float = Field(60.0, gt=0)
    tokens_per_minute: float | None = Field(None, gt=0)
    max_tokens: int = Field(256, ge=1)
    top_p: float = Field(1.0, gt=0, le=1)
    concurrency: int = Field(4, ge=1)
    timeout: float = Field(60.0, gt=0)
    retry_initial_wait: float = Field(1.0, ge=0, description="first backoff (s); doubles, with jitter")
    retry_max_wait: float = Field(60.0, ge=0)
    samples: int = Field(0, ge=0, description="sampled answers per prompt beside each answer (K)")
    sample_temperature: float = Field(0.5, gt=0, description="the samples' temperature (uq score's default)")
    models: list[ModelConfig] = Field(min_length=1)


@dataclass(frozen=True)
class Variant:
    """One model at one temperature: its own journal, results file and progress bar."""

    model: ModelConfig
    temperature: float

    @property
    def name(self) -> str:
        return f"temp{float(self.temperature)}"  # temp0.0, temp0.7, temp1.0

    @property
    def key(self) -> str:
        return re.sub(r"[^A-Za-z0-9._-]+", "_", f"{self.model.name}__{self.name}")


def _expand(value: Any, where: str, path: Path, used: set[str]) -> Any:
    """Replace `${VAR}` from the environment; a missing one is bad input naming the field. A value
    expanded into a secret field (api_key, token, ...) or from a secret-named variable is remembered
    as a secret (`ucli.secrets.remember`): no message, log line or record shows it afterwards."""
    from ucli.secrets import is_secret_name, remember

    if isinstance(value, dict):
        return {k: _expand(v, f"{where}.{k}" if where else k, path, used) for k, v in value.items()}
    if isinstance(value, list):
        return [_expand(v, f"{where}[{i}]", path, used) for i, v in enumerate(value)]
    if isinstance(value, str):

        def sub(m: re.Match) -> str:
            var = m.group(1)
            if var not in os.environ:
                raise BadInput(f"{path}: {where}: environment variable {var} is not set")
            used.add(var)
            if is_secret_name(var) or is_secret_name(where.rsplit(".", 1)[-1]):
                remember(os.environ[var], var)
            return os.environ[var]

        return ENV_REFERENCE.sub(sub, value)
    return value


def read_config_file(path: str | os.PathLike) -> dict[str, Any]:
    """The raw document (JSON or TOML), before expansion and validation."""
    from ucli.documents import read_document

    return read_document(path, "config")


def load_config(path: str | os.PathLike) -> tuple[PilotConfig, dict[str, Any], set[str]]:
    """(validated config, the document as written with `${VAR}` unexpanded, the variables used).

    The unexpanded document is what artifacts record: it names secrets without revealing them.
    """
    p = Path(path)
    raw = read_config_file(p)
    used: set[str] = set()
    expanded = _expand(raw, "", p, used)
    try:
        config = PilotConfig.model_validate(expanded)
    except ValidationError as exc:
        raise invalid(exc, str(p), model=PilotConfig) from None
    from halluc_backends import ALIASES

    known = _backend_names()
    for i, m in enumerate(config.models):
        m.type = ALIASES.get(m.type, m.type)  # records name the backend that ran
        if m.type not in known:
            aliases = ", ".join(f"{a} = {b}" for a, b in ALIASES.items())
            raise BadInput(
                f"{p}: models[{i}].type: unknown backend '{m.type}' (known: {', '.join(known)}; aliases: {aliases})"
            )
    names = [m.name for m in config.models]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise BadInput(f"{p}: models: duplicate name(s) {', '.join(dupes)}")
    return config, raw, used


def _backend_names() -> list[str]:
    from ucli import plugins

    return sorted(p.name for p in plugins.discover("backends") if p.status == "ok")


def variants(config: PilotConfig, only: list[str] | None = None) -> list[Variant]:
    """Every (model, temperature) pair; `only` keeps the named models (unknown names are bad input)."""
    if only:
        missing = [n for n in only if n not in {m.name for m in config.models}]
        if missing:
            raise BadInput(f"--models: no model named {', '.join(missing)} in the config")
    return [Variant(m, t) for m in config.models if not only or m.name in only for t in m.temperature_list()]
