"""Controller repairs as plugins (entry-point group `halluc.repairs`): what the controller does when
its signal fires outside the cooldown. The built-in ones register through the same door:

- `cot`: roll back, sample a micro chain-of-thought between `cot_prefix` and `cot_suffix`, resume;
- `rerank`: roll out the top-k candidates of the fired position, commit the best;
- `abstain`: the answer becomes `abstain_text`; `none`: log the trigger, keep the token;
- `cot+abstain`, `rerank+abstain`: repair, and abstain when the repair is unstable.

A repair is an object with `name`, `help` (one line), `action` (what its trigger events record),
`abstains` (an unstable or malformed repair ends in an abstention), `thinks` (it needs the thought
delimiters) and two methods, each given the controller, the fired `TriggerEvent` and returning an
`Outcome`:

- `fire(ctl, event, cand)`: a trigger outside the cooldown (`cand`: the token that fired);
- `escalate(ctl, event, cand, watched)`: a trigger inside the stability window of the `watched`
  repair (only without an abstain fallback: with one the controller abstains).

A repair acts through the controller's token mechanics and nothing else: `ctl.lm`, `ctl.tokens`,
`ctl.config`, `ctl.threshold`, `ctl.eos`, `ctl.generated`, `ctl.logits`, `ctl.prefix_ids` and
`ctl.suffix_ids` (the thought delimiters), `ctl.next_greedy()`,
`ctl.sample()`, `ctl.candidate(id)`, `ctl.count()`, `ctl.commit(cand, kind)`, `ctl.force(ids)`,
`ctl.crop(n)`, `ctl.snapshot()` / `ctl.restore(saved)`, `ctl.propose(cand)`, `ctl.text(id)`,
`ctl.rollback_target(floor, deeper_than)` and `ctl.abstain(event, reason)`. A third-party repair
is one module and one entry point:

    [project.entry-points."halluc.repairs"]
    my_repair = "my_pkg.repair:MY_REPAIR"
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from halluc_rauq.control_records import Budget, Candidate, TriggerEvent
from halluc_rauq.control_text import sentence_closed
from ucli.errors import BadInput

MAX20 = 20  # thought tokens at most under --cot-policy max20
ANSWER_RESERVE = 8  # budget tokens a thought always leaves for the answer after it


@dataclass(frozen=True)
class Outcome:
    """What a repair did. `finish`: stop decoding with this reason (an abstention). `end`: the
    completion index where the repair's text ends (cooldown and stability window count from
    there); None keeps the fired token. `floor`: no later rollback may cut below `end` (a kept
    thought). `watch`: the event whose stability window starts now."""

    finish: str | None = None
    end: int | None = None
    floor: bool = False
    watch: TriggerEvent | None = None


KEEP = Outcome()  # log the trigger, keep the token


class Repair:
    """The base of the built-in repairs: keeps the token; escalating repairs again from scratch."""

    name = "none"
    help = "detect and log only"
    action = "none"
    abstains = False
    thinks = False

    def fire(self, ctl: Any, event: TriggerEvent, cand: Candidate) -> Outcome:
        return KEEP

    def escalate(self, ctl: Any, event: TriggerEvent, cand: Candidate, watched: TriggerEvent) -> Outcome:
        watched.kept = False
        return self.fire(ctl, event, cand)


class Abstain(Repair):
    name = action = "abstain"
    help = "the answer becomes the abstention text"
    abstains = True

    def fire(self, ctl: Any, event: TriggerEvent, cand: Candidate) -> Outcome:
        return Outcome(finish=ctl.abstain(event, "fired"))


@dataclass(frozen=True)
class CoT(Repair):
    """Roll back, think, resume (docs/control.md has every rule)."""

    abstains: bool = False
    name = action = "cot"
    help = "roll back and think (a micro chain-of-thought)"
    thinks = True

    def fire(self, ctl: Any, event: TriggerEvent, cand: Candidate) -> Outcome:
        if not room_to_think(ctl):
            if self.abstains:
                return Outcome(finish=ctl.abstain(event, "no room"))
            event.action = "none"  # logged; the token is kept
            return KEEP
        return self._think(ctl, event, deeper_than=None)

    def escalate(self, ctl: Any, event: TriggerEvent, cand: Candidate, watched: TriggerEvent) -> Outcome:
        """Undo the unstable thought and roll back further from the same place."""
        watched.kept = False
        return self._think(ctl, event, deeper_than=watched.rollback_target)

    def _think(self, ctl: Any, event: TriggerEvent, deeper_than: int | None) -> Outcome:
        watch = think(ctl, event, deeper_than)
        return Outcome(end=event.cot_span[1], floor=True, watch=watch)


@dataclass(frozen=True)
class Rerank(Repair):
    abstains: bool = False
    name = action = "rerank"
    help = "commit the best of the top-k candidates, each rolled out"

    def fire(self, ctl: Any, event: TriggerEvent, cand: Candidate) -> Outcome:
        rerank(ctl, event, cand)
        watched = self.abstains and ctl.config.stability_window > 0
        return Outcome(end=len(ctl.tokens), watch=event if watched else None)


NONE = Repair()
ABSTAIN = Abstain()
COT, COT_ABSTAIN = CoT(), CoT(abstains=True)
RERANK, RERANK_ABSTAIN = Rerank(), Rerank(abstains=True)


def repairs() -> dict[str, Repair]:
    """Every repair that loaded, by entry-point name (`halluc.repairs`)."""
    from ucli import plugins

    return {info.name: info.obj for info in plugins.discover("repairs") if info.status == "ok"}


def repair_named(name: str) -> Repair:
    found = repairs()
    if name not in found:
        raise BadInput(f"--repair: unknown repair '{name}' (expected one of {', '.join(found)})")
    return found[name]


# ---- the built-in repairs' mechanics -------------------------------------------------------------


def room_to_think(ctl: Any) -> bool:
    """Whether the budget holds a thought of the minimum length and an answer after it."""
    cfg = ctl.config
    cap = min(cfg.cot_length, MAX20) if cfg.cot_policy == "max20" else cfg.cot_length
    return cfg.max_new_tokens - ctl.generated >= min(cfg.cot_min_tokens, cap) + ANSWER_RESERVE


def think(ctl: Any, event: TriggerEvent, deeper_than: int | None) -> TriggerEvent | None:
    """Roll back, think, resume; returns the event to watch for stability (None: window 0)."""
    cfg = ctl.config
    target, clipped = ctl.rollback_target(event.floor, deeper_than)
    event.rollback_target, event.clipped = target, clipped
    event.rollback_depth = len(ctl.tokens) - target
    ctl.crop(target)
    start = target
    try:
        ctl.force(ctl.prefix_ids)
        cap = min(cfg.cot_length, MAX20) if cfg.cot_policy == "max20" else cfg.cot_length
        shortest = min(cfg.cot_min_tokens, cap)
        cap = max(shortest, min(cap, cfg.max_new_tokens - ctl.generated - ANSWER_RESERVE))
        event.cot_stop = "length"
        while event.cot_tokens < cap:
            tok = ctl.sample(allow_eos=event.cot_tokens >= shortest)
            if tok.id in ctl.eos:
                event.cot_stop = "eos"
                break
            ctl.commit(tok, "cot")
            event.cot_tokens += 1
            if (
                cfg.cot_policy == "rauq"
                and event.cot_tokens >= shortest
                and sentence_closed(_thought_text(ctl, start))
                and _look_ahead(ctl, event)
            ):
                event.cot_stop = "signal"
                break
        if event.cot_stop != "signal":
            ctl.force(ctl.suffix_ids)
            event.cot_span = [start, len(ctl.tokens)]
    except Budget:
        event.cot_stop = "budget" if event.cot_span is None else "signal"
        event.cot_span = event.cot_span or [start, len(ctl.tokens)]
        raise
    return event if cfg.stability_window > 0 else None


def _thought_text(ctl: Any, start: int) -> str:
    """The sampled thought so far (the tokens after the prefix that opened it at `start`)."""
    return ctl.lm.tokenizer.decode([t.id for t in ctl.tokens[start:] if t.kind == "cot"])


def _look_ahead(ctl: Any, event: TriggerEvent) -> bool:
    """Close the thought and decode up to `cot_horizon` greedy tokens: keep them when none fires,
    else take them back (they count as generated) and let the thought go on."""
    mark, saved = len(ctl.tokens), ctl.snapshot()
    ctl.force(ctl.suffix_ids)
    event.cot_span = [event.rollback_target, len(ctl.tokens)]
    for _ in range(ctl.config.cot_horizon):
        cand = ctl.next_greedy()
        if cand.id in ctl.eos:
            break
        if ctl.threshold.fires(cand.signal):
            ctl.crop(mark)
            ctl.restore(saved)
            event.cot_span = None
            return False
        ctl.commit(cand, "greedy")
    return True


def rerank(ctl: Any, event: TriggerEvent, trigger: Candidate) -> None:
    """Top-k candidates, each rolled out greedily; commit the best mean log-probability."""
    import torch

    cfg = ctl.config
    mark, saved = len(ctl.tokens), ctl.snapshot()
    log_probs = torch.log_softmax(ctl.logits.float(), dim=-1)
    top = torch.topk(log_probs, min(cfg.rerank_k, log_probs.shape[-1]))
    scored = []
    try:
        for lp, tid in zip(top.values.tolist(), top.indices.tolist(), strict=True):
            if tid != trigger.id:
                ctl.count()  # the trigger's own token was counted when it was chosen
            cand = ctl.candidate(tid)
            lps = [lp]
            if tid not in ctl.eos:
                ctl.commit(cand, "rerank")
                for _ in range(cfg.rerank_lookahead):
                    nxt = ctl.next_greedy()
                    if nxt.id in ctl.eos:
                        break
                    lps.append(nxt.logprob)
                    ctl.commit(nxt, "greedy")
                ctl.crop(mark)
                ctl.restore(saved)
            scored.append((sum(lps) / len(lps), tid, cand))
    except Budget:  # no roll-out text may stay in the completion
        ctl.crop(mark)
        raise
    best = max(scored, key=lambda s: s[0])
    event.candidates = [{"token": tid, "text": ctl.text(tid), "score": score} for score, tid, _ in scored]
    event.rollback_target = mark
    if best[1] in ctl.eos:
        ctl.propose(best[2])  # the main loop sees the eos and stops
        return
    ctl.commit(best[2], "rerank")
