"""The RAUQ-triggered controller: greedy decoding that watches its own uncertainty and repairs itself.

One sequence at a time, with a KV cache that rollbacks crop (no re-prefill). After every greedy
token the trigger signal is computed online: a token signal of the estimator registry
(`halluc_signals.token_signals`), such as the RAUQ token score with fixed calibrated heads, the entropy
or the top-1 minus top-2 margin. When it crosses theta outside the cooldown, the controller repairs (repairs are plugins,
`halluc_rauq.repairs`; the built-in ones):

- `cot`: roll back (K tokens, or to the last anchor), insert `cot_prefix`, sample a micro
  chain-of-thought, insert `cot_suffix`, resume greedy decoding. Policy `rauq` ends the thought
  once a greedy look-ahead of up to `cot_horizon` answer tokens stays under theta (those tokens are
  kept); `max20` caps the thought at 20 tokens; `unlimited` runs to `cot_length`. A repair is
  stable when none of the `stability_window` greedy tokens after it triggers; otherwise it is
  undone and the controller rolls back further from the same place and thinks again.
- `rerank`: the top-k candidates for the triggering position each roll out `rerank_lookahead`
  greedy tokens; the candidate with the best mean log-probability is committed.
- `none`: the trigger is logged and the token kept.
- `abstain`: the answer becomes `abstain_text` (decoding stops). `cot+abstain` and
  `rerank+abstain` repair first and abstain when the repair does not calm the signal within its
  stability window.

A thought lasts at least `cot_min_tokens` sampled tokens, and under policy `rauq` ends only at a
sentence end or line break after which the look-ahead is calm. The judged answer is the
completion with every kept thought cut out (opening to closing delimiter) and the delimiter debris
at each seam dropped: the text after the last thought, which answers its closing cue, with each
piece before a thought only when it is a finished sentence (`control_text.judged_answer`).

docs/control.md defines every rule precisely; tests/test_rauq_controller.py checks each one.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from halluc_rauq.control_config import DELIMITERS, ControllerConfig, Threshold
from halluc_rauq.control_records import NAN, Budget, Candidate, Check, ControllerOutput, Token, TriggerEvent
from halluc_rauq.control_text import ANCHOR_CHARS, LEADING_JUNK, judged_answer, sentence_closed
from halluc_rauq.repairs import ANSWER_RESERVE, Outcome, repair_named
from halluc_signals import RAUQScorer
from ucli.errors import BadInput
from ucli.generation import token_statistics

# the controller's public face: the loop, and the config, threshold and records it runs with
__all__ = ["ANSWER_RESERVE", "DELIMITERS", "ControllerConfig", "ControllerOutput", "RAUQController", "RAUQScorer",
           "Threshold", "Token", "TriggerEvent", "answer_uncertainty", "sentence_closed"]  # fmt: skip


def answer_uncertainty(tokens: list[Token], direction: str) -> dict[str, float]:
    """Sequence-level uncertainty of answer tokens (higher = less trustworthy): RAUQ u (max over
    layers of the mean -log c), the largest token RAUQ score, -log P(answer) (maximum sequence
    probability), mean negative log-likelihood, mean token entropy, and `peak_signal`: the trigger
    signal's most extreme value (max for direction above, min for below), which decides whether
    an online trigger fires anywhere in the answer."""
    if not tokens:
        return dict.fromkeys(("rauq", "max_rauq", "msp", "mean_nll", "mean_entropy", "peak_signal"), NAN)
    logp = np.array([t.logprob for t in tokens])
    signals = np.array([t.signal for t in tokens])
    log_c = [t.log_c for t in tokens]
    rauq = float((-np.stack(log_c)).mean(axis=0).max()) if all(c is not None for c in log_c) else NAN
    return {
        "rauq": rauq,
        "max_rauq": float(np.max([t.rauq for t in tokens])),
        "msp": float(-logp.sum()),
        "mean_nll": float(-logp.mean()),
        "mean_entropy": float(np.mean([t.entropy for t in tokens])),
        "peak_signal": float(signals.max() if direction == "above" else signals.min()),
    }


def _require_prompts(prompts: list[str]) -> None:
    if any(not p.strip() for p in prompts):
        raise BadInput("the prompt is empty")


def _row_cache(cache: Any, row: int, pad: int) -> Any:
    """One batch row's KV cache as a cache of its own, its left padding dropped."""
    from transformers import DynamicCache

    own = DynamicCache()
    for i, layer in enumerate(cache.layers):
        own.update(
            layer.keys[row : row + 1, :, pad:].clone(), layer.values[row : row + 1, :, pad:].clone(), i
        )
    return own


@dataclass
class _Loop:
    """The decoding loop's state between triggers."""

    quiet_since: int = 0  # completion index where the cooldown started (end of the last repair)
    watch: TriggerEvent | None = None  # the repair under its stability window
    watch_end: int = 0  # completion index where that repair's text ends
    floor: int = 0  # no rollback goes below this (the end of a kept thought)


@dataclass
class _Lockstep:
    """A batch decoded greedily in lock step until a row triggers (then it finishes alone)."""

    n: int
    cache: Any
    pads: list[int]
    mask: Any
    pos: Any
    logits: Any
    attn: Any
    rows: list[list[Token]] = field(default_factory=list)
    generated: list[int] = field(default_factory=list)
    results: list[ControllerOutput | None] = field(default_factory=list)
    active: list[int] = field(default_factory=list)
    spent: list[float] = field(default_factory=list)  # each row's share of the lock-step time so far
    clock: float = field(default_factory=time.perf_counter)

    def __post_init__(self) -> None:
        self.rows, self.generated = [[] for _ in range(self.n)], [0] * self.n
        self.results, self.active, self.spent = [None] * self.n, list(range(self.n)), [0.0] * self.n

    def charge(self) -> None:
        """Share the time since the last step among the rows still decoding."""
        now = time.perf_counter()
        for b in self.active:
            self.spent[b] += (now - self.clock) / len(self.active)
        self.clock = now


class RAUQController:
    """`RAUQController(lm, config, scorer, threshold).generate(prompt) -> ControllerOutput`.

    `lm` is a `ucli.models.LoadedModel`; `scorer` (fixed RAUQ heads) is needed for the rauq trigger
    and optional otherwise (then `rauq_scores` are NaN); `threshold` says when to fire (theta = inf
    never fires). Prompts are final text: apply the chat template first (`lm.chat_prompt`).
    """

    def __init__(self, lm: Any, config: ControllerConfig, scorer: RAUQScorer | None, threshold: Threshold):
        from halluc_signals import TokenStep

        self.trigger_signal, self._token_step = threshold.estimator, TokenStep
        if threshold.needs_heads and scorer is None:
            raise BadInput(f"the {config.trigger} trigger needs calibrated heads (heads.json)")
        if threshold.signal != config.trigger:
            raise BadInput(f"the threshold is for '{threshold.signal}' but the trigger is '{config.trigger}'")
        self.lm, self.config, self.scorer, self.threshold = lm, config, scorer, threshold
        from ucli.generation import eos_ids

        self.eos = eos_ids(lm)
        tok = lm.tokenizer
        self.prefix_ids = tok(config.cot_prefix, add_special_tokens=False)["input_ids"]
        self.suffix_ids = tok(config.cot_suffix, add_special_tokens=False)["input_ids"]
        self.repair = repair_named(config.repair)
        if self.repair.thinks and not (self.prefix_ids and self.suffix_ids):
            raise BadInput("--cot-prefix and --cot-suffix must each encode to at least one token")

    # ---- public -------------------------------------------------------------------------------

    def generate(self, prompt: str, seed: int | None = None, check: Check | None = None) -> ControllerOutput:
        """`check(answer)` says whether a judged answer reads as an answer: with an abstain
        fallback (`cot+abstain`, `rerank+abstain`) a repaired answer that fails it is abstained."""
        import torch
        from transformers import DynamicCache

        _require_prompts([prompt])
        start = time.perf_counter()
        with torch.no_grad(), self._watching():
            self._begin(DynamicCache(), seed)
            self._feed(self.lm.encode([prompt])["input_ids"][0].tolist())
            finish = self._checked(self._run(), check)
        return self._output(finish, time.perf_counter() - start)

    def generate_batch(
        self,
        prompts: list[str],
        seeds: list[int] | None = None,
        batch_size: int = 8,
        advance: Callable[[int], None] = lambda n: None,
        checks: list[Check] | None = None,
    ) -> list[ControllerOutput]:
        """One output per prompt, decoded `batch_size` at a time (`checks`: one per prompt, as in
        `generate`).

        A batch decodes greedily in lock-step (left padding, position ids that ignore it) until a
        sequence's signal fires: that sequence leaves the batch with its own slice of the KV cache
        (padding dropped) and is finished alone, because its rollbacks crop its cache only. Plain
        greedy (max_triggers 0) never leaves the batch. A sequence's latency is the time actually
        spent on it: its share of each lock-step forward pass it took part in, plus the time it
        decoded alone; the latencies of a batch add up to its wall time.
        """
        import torch

        _require_prompts(prompts)
        outputs: list[ControllerOutput] = []
        with torch.no_grad(), self._watching():
            for start in range(0, len(prompts), batch_size):
                chunk = prompts[start : start + batch_size]
                chunk_seeds = None if seeds is None else seeds[start : start + batch_size]
                chunk_checks = None if checks is None else checks[start : start + batch_size]
                outputs.extend(self._batch(chunk, chunk_seeds, chunk_checks))
                advance(len(chunk))
        return outputs

    # ---- the decoding loop -----------------------------------------------------------------------

    @contextmanager
    def _watching(self) -> Iterator[None]:
        """Watch the scorer's heads for the duration of a call (nothing to watch without a scorer)."""
        from halluc_signals import watch_own_key_attention

        if self.scorer is None:
            self._captured: dict[int, list] = {}
            yield
            return
        heads = {layer: [h] for layer, h in self.scorer.heads.items()}
        with watch_own_key_attention(self.lm.model, heads) as captured:
            self._captured = captured
            yield

    def _begin(self, cache: Any, seed: int | None, tokens: list[Token] | None = None, generated: int = 0):
        """Fresh per-sequence state (a batch row hands over its tokens and count)."""
        import torch

        self.cache = cache
        self.tokens = tokens if tokens is not None else []
        self.events: list[TriggerEvent] = []
        self.abstained = False
        self.generated = generated
        self._version = 0
        self._pending: tuple[int, Candidate] | None = None
        self._gen = torch.Generator().manual_seed(self.config.seed if seed is None else seed)

    def _batch(
        self, prompts: list[str], seeds: list[int] | None, checks: list[Check] | None = None
    ) -> list[ControllerOutput]:
        import torch
        from transformers import DynamicCache

        clock = time.perf_counter()
        enc = self.lm.encode(prompts)
        mask = enc["attention_mask"]
        pos = (mask.cumsum(-1) - 1).clamp(min=0)
        cache = DynamicCache()
        logits, attn = self._forward(cache, enc["input_ids"], mask, pos)
        run = _Lockstep(
            len(prompts), cache, (mask == 0).sum(1).tolist(), mask, pos, logits, attn, clock=clock
        )
        while run.active:
            run.charge()
            feed = torch.full((len(prompts), 1), self.lm.tokenizer.pad_token_id, dtype=torch.long)
            run.active = [b for b in run.active if self._greedy_step(run, b, feed, seeds, checks)]
            if run.active:
                step = torch.zeros((len(prompts), 1), dtype=run.mask.dtype)
                step[run.active] = 1
                run.mask, run.pos = torch.cat([run.mask, step], dim=1), run.pos[:, -1:] + 1
                run.logits, run.attn = self._forward(run.cache, feed, run.mask, run.pos)
        return run.results  # type: ignore[return-value]

    def _greedy_step(
        self, run: _Lockstep, b: int, feed: Any, seeds: list[int] | None, checks: list[Check] | None
    ) -> bool:
        """Row `b`'s next greedy token: finished (length, eos), handed to the loop alone (a
        trigger), or kept in the lock-step batch (True)."""
        row_attn = None if run.attn is None else run.attn[:, b]
        rows, generated = run.rows[b], run.generated[b]
        if generated >= self.config.max_new_tokens:
            run.results[b] = self._finish_row(rows, generated, "length", run.spent[b])
            return False
        prev = rows[-1].log_c if rows else None
        cand = self._score(run.logits[b], row_attn, prev, int(run.logits[b].argmax()))
        run.generated[b] = generated = generated + 1
        if cand.id in self.eos:
            run.results[b] = self._finish_row(rows, generated, "eos", run.spent[b])
            return False
        if self.config.max_triggers > 0 and self.threshold.fires(cand.signal):
            alone = time.perf_counter()
            self._begin(
                _row_cache(run.cache, b, run.pads[b]), None if seeds is None else seeds[b], rows, generated
            )
            self.logits, self._attn, self._pending = run.logits[b], row_attn, (0, cand)
            finish = self._checked(self._run(), None if checks is None else checks[b])
            run.results[b] = self._output(finish, run.spent[b] + time.perf_counter() - alone)
            run.clock += time.perf_counter() - alone  # the others waited; not their time
            return False
        rows.append(Token(cand.id, self.text(cand.id), "greedy", cand.logprob, cand.signal,
                          cand.rauq, cand.log_c, cand.entropy))  # fmt: skip
        feed[b, 0] = cand.id
        return True

    def _finish_row(
        self, tokens: list[Token], generated: int, finish: str, latency: float
    ) -> ControllerOutput:
        self._begin(None, None, tokens, generated)
        return self._output(finish, latency)

    def _run(self) -> str:
        """Decode from the current state to eos, the budget or an abstention, triggering and repairing."""
        cfg, loop = self.config, _Loop()
        try:
            while True:
                cand = self.next_greedy()
                if cand.id in self.eos:
                    return "eos"
                n = len(self.tokens)
                if loop.watch is not None and n - loop.watch_end >= cfg.stability_window:
                    loop.watch.stable, loop.watch = True, None
                fired = self.threshold.fires(cand.signal) and len(self.events) < cfg.max_triggers
                outcome = self._trigger(cand, n, loop) if fired else None
                if outcome is not None and outcome.finish is not None:
                    return outcome.finish
                if outcome is not None and outcome.end is not None:  # the repair's text replaced the token
                    loop.quiet_since = loop.watch_end = outcome.end
                    loop.floor, loop.watch = outcome.end if outcome.floor else loop.floor, outcome.watch
                    continue
                if outcome is not None:
                    loop.quiet_since = n + 1  # the trigger is logged and the token kept
                self.commit(cand, "greedy")
        except Budget:
            return "length"

    def _trigger(self, cand: Candidate, n: int, loop: _Loop) -> Outcome | None:
        """A fired signal: inside a stability window abstain or escalate, after the cooldown repair,
        else nothing (None)."""
        if loop.watch is not None:
            loop.watch.stable = False
            event = self._event(cand, loop.watch.floor)
            event.escalated_from = self.events.index(loop.watch)
            if self.repair.abstains:
                return Outcome(finish=self.abstain(event, "unstable"))
            return self.repair.escalate(self, event, cand, loop.watch)
        if n - loop.quiet_since >= self.config.cooldown or not self.events:
            return self.repair.fire(self, self._event(cand, loop.floor), cand)
        return None

    def _event(self, cand: Candidate, floor: int) -> TriggerEvent:
        event = TriggerEvent(len(self.tokens), cand.signal, self.repair.action, self.generated, floor=floor)
        self.events.append(event)
        return event

    def abstain(self, event: TriggerEvent, reason: str) -> str:
        """Stop: the answer becomes the abstention text (the fired token is not committed)."""
        event.action, event.reason = "abstain", reason
        self.abstained = True
        return "abstain"

    def _checked(self, finish: str, check: Check | None) -> str:
        """With an abstain fallback, a repaired answer that does not read as an answer is abstained."""
        if check is None or not self.repair.abstains or self.abstained:
            return finish
        repairs = [i for i, e in enumerate(self.events) if e.kept and e.action in ("cot", "rerank")]
        if not repairs or check(self._answer_text(self._answer_segments())):
            return finish
        event = TriggerEvent(len(self.tokens), NAN, "abstain", self.generated, escalated_from=repairs[-1])
        self.events.append(event)
        return self.abstain(event, "malformed")

    def rollback_target(self, floor: int, deeper_than: int | None) -> tuple[int, bool]:
        """Where to cut. fixed: K tokens back (K more than the undone repair when escalating);
        anchor: just after the latest token ending in one of ANCHOR_CHARS; sentence: just after the
        latest sentence end or line break (`sentence_closed`), i.e. back to the start of the
        sentence that fired; anchors strictly before the undone repair's cut when escalating. Never
        below `floor`; `clipped` says the cut hit it (or found no anchor)."""
        cfg = self.config
        end = len(self.tokens) if deeper_than is None else deeper_than
        if cfg.rollback_mode == "fixed":
            want = end - cfg.rollback if deeper_than is None else deeper_than - max(cfg.rollback, 1)
            return max(want, floor), want < floor
        limit = end if deeper_than is None else end - 1
        for t in range(limit, floor, -1):
            if cfg.rollback_mode == "anchor":
                cut = self.tokens[t - 1].text.rstrip(" ").endswith(tuple(ANCHOR_CHARS))
            else:  # a few tokens of context tell "in 1930." from a list number "1."
                cut = sentence_closed("".join(tok.text for tok in self.tokens[max(floor, t - 4) : t]))
            if cut:
                return t, False
        return floor, True  # no anchor: back to the floor

    # ---- token mechanics -------------------------------------------------------------------------

    def count(self) -> None:
        if self.generated >= self.config.max_new_tokens:
            raise Budget
        self.generated += 1

    def propose(self, cand: Candidate) -> None:
        """Make `cand` the token the loop sees next (a repair's choice; an eos ends the answer)."""
        self._pending = (self._version, cand)

    def next_greedy(self) -> Candidate:
        """The argmax token (counted once per position, however often it is asked for)."""
        if self._pending is not None and self._pending[0] == self._version:
            return self._pending[1]
        self.count()
        cand = self.candidate(int(self.logits.argmax()))
        self._pending = (self._version, cand)
        return cand

    def sample(self, allow_eos: bool = True) -> Candidate:
        """A thought token: temperature and nucleus (top-p) sampling from the seeded generator; with
        `allow_eos` False (a thought shorter than cot_min_tokens) end-of-sequence is masked out."""
        import torch

        self.count()
        cfg = self.config
        logits = self.logits.float().cpu()
        if not allow_eos:
            logits = logits.clone()
            logits[list(self.eos)] = -math.inf
        probs = torch.softmax(logits / cfg.cot_temperature, dim=-1)
        sorted_p, order = probs.sort(descending=True)
        keep = (sorted_p.cumsum(0) - sorted_p) < cfg.cot_top_p  # the smallest set reaching top_p
        sorted_p = sorted_p * keep
        pick = torch.multinomial(sorted_p / sorted_p.sum(), 1, generator=self._gen)
        return self.candidate(int(order[pick]))

    def candidate(self, token_id: int) -> Candidate:
        prev = self.tokens[-1].log_c if self.tokens and self.tokens[-1].kind != "forced" else None
        return self._score(self.logits, self._attn, prev, token_id)

    def _score(
        self, logits: Any, attn: np.ndarray | None, prev: np.ndarray | None, token_id: int
    ) -> Candidate:
        """Score `token_id` as the next token: log p, trigger signal, RAUQ token score (`prev`: the
        RAUQ state of the token before; None restarts the chain)."""
        import torch

        _, chosen, entropy, margin, _ = token_statistics(logits, torch.tensor(token_id, device=logits.device))
        log_p = float(chosen)
        rauq, log_c = NAN, None
        if self.scorer is not None:
            log_c = self.scorer.step(log_p, attn, prev)
            rauq = self.scorer.token_score(log_c)
        step = self._token_step(log_p, float(entropy), float(margin), rauq)
        signal = float(self.trigger_signal.step(step))
        return Candidate(token_id, log_p, signal, rauq, log_c, float(entropy))

    def commit(self, cand: Candidate, kind: str) -> None:
        text = self.text(cand.id)
        self.tokens.append(
            Token(cand.id, text, kind, cand.logprob, cand.signal, cand.rauq, cand.log_c, cand.entropy)
        )
        self._feed([cand.id])

    def force(self, ids: list[int]) -> None:
        """Feed fixed text (thought delimiters): part of the completion, never scored."""
        for tid in ids:
            self.tokens.append(Token(tid, self.text(tid), "forced", NAN, NAN, NAN))
        self._feed(ids)

    def _feed(self, ids: list[int]) -> None:
        import torch

        logits, attn = self._forward(self.cache, torch.tensor([ids]), None, None)
        self.logits, self._attn = logits[0], None if attn is None else attn[:, 0]
        self._version += 1

    def _forward(self, cache: Any, ids: Any, mask: Any, pos: Any) -> tuple[Any, np.ndarray | None]:
        """One cached forward step: next-token logits [B, V] and, per watched layer, a(i) [L_sel, B]
        (each row's newest query on its own key)."""
        import torch

        for sink in self._captured.values():
            sink.clear()
        device = self.lm.device
        out = self.lm.model(
            input_ids=ids.to(device),
            attention_mask=None if mask is None else mask.to(device),
            position_ids=None if pos is None else pos.to(device),
            use_cache=True,
            **self.lm.cache_kwargs(cache),
            logits_to_keep=1,
        )
        if self.scorer is None:
            return out.logits[:, -1], None
        attn = torch.stack([self._captured[layer][-1][:, 0] for layer in self.scorer.layers])
        return out.logits[:, -1], attn.cpu().numpy()

    def crop(self, length: int) -> None:
        """Keep the first `length` completion tokens; the cache loses the rest (no re-prefill)."""
        drop = len(self.tokens) - length
        if drop > 0:
            self.cache.crop(-drop)
            del self.tokens[length:]
        self._version += 1

    def snapshot(self) -> tuple[Any, Any]:
        return self.logits, self._attn

    def restore(self, saved: tuple[Any, Any]) -> None:
        self.logits, self._attn = saved

    def text(self, token_id: int) -> str:
        return self.lm.tokenizer.decode([token_id])

    def _answer_segments(self) -> list[list[Token]]:
        """The answer's pieces: the greedy/rerank text between the kept thoughts (each cut out from
        its opening to its closing delimiter)."""
        spans = sorted(e.cot_span for e in self.events if e.kept and e.action == "cot" and e.cot_span)
        bounds = [0, *(i for span in spans for i in span), len(self.tokens)]
        return [
            [t for t in self.tokens[start:stop] if t.kind in ("greedy", "rerank")]
            for start, stop in zip(bounds[::2], bounds[1::2], strict=True)
        ]

    def _answer_text(self, segments: list[list[Token]]) -> str:
        """The pieces decoded, a piece after a thought without the delimiter debris it starts with
        (": Paris." -> "Paris."), and read as `judged_answer` reads them."""
        decode = self.lm.tokenizer.decode
        texts = [decode([t.id for t in seg], skip_special_tokens=True).strip() for seg in segments]
        opening = self.config.cot_prefix if self.repair.thinks else ""
        return judged_answer([texts[0]] + [text.lstrip(LEADING_JUNK) for text in texts[1:]], opening)

    def _output(self, finish: str, latency: float) -> ControllerOutput:
        decode = self.lm.tokenizer.decode
        kept = [t for t in self.tokens if t.kind != "forced"]
        segments = self._answer_segments()
        answer_tokens = [t for segment in segments for t in segment]
        answer = self._answer_text(segments)
        if self.abstained:
            answer = self.config.abstain_text
        extra = self.generated - len(kept) - (finish == "eos")  # the closing eos is no repair cost
        stats = {
            "triggers": len(self.events),
            "kept_repairs": sum(e.kept for e in self.events if e.action in ("cot", "rerank")),
            "escalations": sum(e.escalated_from is not None for e in self.events),
            "cot_tokens": sum(t.kind == "cot" for t in self.tokens),
            "completion_tokens": len(self.tokens),
            "generated_tokens": self.generated,
            "extra_tokens": extra,
            "finish_reason": finish,
        }
        return ControllerOutput(
            completion=decode([t.id for t in self.tokens], skip_special_tokens=True).strip(),
            answer=answer,
            tokens=list(self.tokens),
            trigger_events=list(self.events),
            rauq_scores=[t.rauq for t in self.tokens],
            signals=[t.signal for t in self.tokens],
            extra_tokens=extra,
            generated_tokens=self.generated,
            latency_s=latency,
            finish_reason=finish,
            stats=stats,
            abstained=self.abstained,
            uncertainty=answer_uncertainty(answer_tokens, self.threshold.direction),
        )
