"""The controller: online RAUQ against teacher forcing, KV-cache rollbacks against full forward passes,
and every trigger/repair rule on scripted triggers."""

import json
import math
import time

import numpy as np
import pytest
import torch

from halluc_rauq.controller import (
    ControllerConfig,
    RAUQController,
    RAUQScorer,
    Threshold,
    Token,
    TriggerEvent,
    sentence_closed,
)
from halluc_signals import score_completion, watch_own_key_attention
from ucli.errors import BadInput
from ucli.generation import generate
from ucli.models import load_model


@pytest.fixture(scope="module", params=["llama", "qwen2"])
def lm(request, tiny_llama, tiny_qwen2):
    return load_model(str(tiny_llama if request.param == "llama" else tiny_qwen2), device="cpu")


@pytest.fixture(scope="module")
def qwen(tiny_qwen2):
    return load_model(str(tiny_qwen2), device="cpu")


def scorer_for(lm, alpha=0.5):
    layers = list(range(lm.fingerprint.num_layers))
    return RAUQScorer(layers, {layer: (layer + 1) % lm.fingerprint.num_heads for layer in layers}, alpha)


class Scripted(Threshold):
    """Fires on the listed calls to `fires` (0-based), whatever the signal."""

    def __init__(self, calls, signal="rauq"):
        super().__init__(0.0, "above", signal)
        object.__setattr__(self, "calls", set(calls))
        object.__setattr__(self, "n", [0])

    def fires(self, value):
        self.n[0] += 1
        return self.n[0] - 1 in self.calls


def full_logprobs(lm, prompt_ids, ids):
    """log p of every completion token from one plain forward pass over prompt + completion."""
    with torch.no_grad():
        logits = lm.model(torch.tensor([prompt_ids + ids])).logits[0].double()
    logp = torch.log_softmax(logits, -1)
    s = len(prompt_ids)
    return [logp[s - 1 + i, t].item() for i, t in enumerate(ids)]


def prompt_of(lm, text="Tell me about the river and the mountain."):
    return lm.chat_prompt(text)


# ---- attention watching --------------------------------------------------------------------------


def test_watched_own_key_weights_equal_eager_attention_in_padded_gqa_batches(qwen):
    enc = qwen.encode([prompt_of(qwen, "a b c"), prompt_of(qwen, "a much longer prompt with more words")])
    model = qwen.model
    from transformers import DynamicCache

    cache = DynamicCache()
    heads = {1: [0, 5], 3: None}
    with torch.no_grad(), watch_own_key_attention(model, heads) as captured:
        assert model.config._attn_implementation.startswith("halluc_watch+")
        out = model(**enc, use_cache=True, **qwen.cache_kwargs(cache))
        step = out.logits[:, -1].argmax(-1, keepdim=True)
        mask = torch.cat([enc["attention_mask"], torch.ones_like(step)], dim=1)
        model(input_ids=step, attention_mask=mask, use_cache=True, **qwen.cache_kwargs(cache))
    assert model.config._attn_implementation == "sdpa"
    ids = torch.cat([enc["input_ids"], step], dim=1)
    model.set_attn_implementation("eager")
    with torch.no_grad():
        full = model(input_ids=ids, attention_mask=mask, output_attentions=True).attentions
    model.set_attn_implementation("sdpa")
    for layer, chosen in heads.items():
        want = full[layer][:, :, -1, -1]  # [B, H]: the last query on its own key
        want = want if chosen is None else want[:, chosen]
        assert torch.allclose(captured[layer][-1], want.float(), atol=1e-5)
        assert captured[layer][-1].shape == (2, 6 if chosen is None else 2)


# ---- no trigger: exactly plain greedy, RAUQ exactly teacher-forced -------------------------------


def test_without_triggers_the_controller_is_plain_greedy_with_teacher_forced_rauq(lm):
    scorer = scorer_for(lm, alpha=0.05)  # a small alpha lets the layers' attention set them apart
    controller = RAUQController(
        lm, ControllerConfig(max_new_tokens=12), scorer, Threshold.fixed(math.inf, "rauq")
    )
    prompt = prompt_of(lm)
    out = controller.generate(prompt)
    plain = generate(lm, [prompt], 12)[0]
    assert [t.id for t in out.tokens] == plain["token_ids"]
    assert [t.logprob for t in out.tokens] == pytest.approx(plain["logprobs"], abs=1e-5)
    assert out.answer == out.completion == plain["answer"]
    assert out.trigger_events == [] and out.extra_tokens == 0
    assert out.generated_tokens == len(plain["token_ids"]) + (plain["finish_reason"] == "eos")
    prompt_ids = lm.encode([prompt])["input_ids"][0].tolist()
    forced = score_completion(lm, prompt_ids, plain["token_ids"], scorer.layers, scorer.alpha, scorer.heads)
    assert out.rauq_scores == pytest.approx(forced.tokens, rel=1e-3)  # float32 cached vs forced passes
    assert out.signals == out.rauq_scores


def test_the_online_recurrence_gives_the_token_scores_of_rauq_scores():
    """Layers disagree here (random attention), so a min where the max belongs cannot pass."""
    from halluc_signals import rauq_scores

    rng = np.random.default_rng(7)
    layers, heads = [2, 5, 9], {2: 1, 5: 0, 9: 3}
    log_p = np.log(rng.uniform(0.05, 1.0, 12))
    attn = rng.uniform(0.0, 1.0, (3, 4, 12))
    want = rauq_scores(log_p, attn, layers, 0.4, heads).tokens
    scorer, prev, got = RAUQScorer(layers, heads, 0.4), None, []
    for i in range(12):
        prev = scorer.step(log_p[i], None if i == 0 else attn[:, [1, 0, 3], i].diagonal(), prev)
        got.append(scorer.token_score(prev))
    assert got == pytest.approx(want, rel=1e-12)
    assert len({round(float(v), 6) for v in (-prev)}) == 3  # the layers really differ


@pytest.mark.parametrize("trigger", ["entropy", "margin", "min_token_probability"])
def test_registry_signals_match_the_full_distribution(qwen, trigger):
    controller = RAUQController(qwen, ControllerConfig(trigger=trigger, max_new_tokens=6), None,
                                Threshold.fixed(-math.inf if trigger == "margin" else math.inf, trigger))  # fmt: skip
    prompt = prompt_of(qwen)
    out = controller.generate(prompt)
    prompt_ids = qwen.encode([prompt])["input_ids"][0].tolist()
    with torch.no_grad():
        logits = qwen.model(torch.tensor([prompt_ids + [t.id for t in out.tokens]])).logits[0].double()
    probs = torch.softmax(logits[len(prompt_ids) - 1 : -1], -1)
    if trigger == "entropy":
        want = -(probs * probs.log()).sum(-1)
    elif trigger == "min_token_probability":
        want = 1 - probs[range(len(out.tokens)), [t.id for t in out.tokens]]
    else:
        top = probs.topk(2).values
        want = top[:, 0] - top[:, 1]
    assert out.signals == pytest.approx(want.tolist(), abs=1e-5)
    assert all(math.isnan(v) for v in out.rauq_scores)  # no heads, no RAUQ


# ---- rollbacks crop the cache; what is kept is what a fresh forward pass gives -----------------


@pytest.mark.parametrize("repair", ["cot", "rerank"])
def test_repaired_completions_agree_with_a_fresh_forward_pass(lm, repair):
    config = ControllerConfig(repair=repair, max_new_tokens=40, cooldown=0, stability_window=0,
                              cot_length=3, cot_policy="unlimited")  # fmt: skip
    controller = RAUQController(lm, config, scorer_for(lm), Scripted({3, 9}))
    prompt = prompt_of(lm)
    out = controller.generate(prompt)
    assert out.stats["triggers"] == 2
    prompt_ids = lm.encode([prompt])["input_ids"][0].tolist()
    ids = [t.id for t in out.tokens]
    fresh = full_logprobs(lm, prompt_ids, ids)
    for t, want in zip(out.tokens, fresh, strict=True):
        if t.kind != "forced":
            assert t.logprob == pytest.approx(want, abs=1e-4)
    greedy = [i for i, t in enumerate(out.tokens) if t.kind == "greedy"]
    with torch.no_grad():
        logits = lm.model(torch.tensor([prompt_ids + ids])).logits[0]
    for i in greedy:
        assert logits[len(prompt_ids) - 1 + i].argmax().item() == out.tokens[i].id
    assert controller.cache.get_seq_length() == len(prompt_ids) + len(ids)
    kept = sum(t.kind != "forced" for t in out.tokens)
    assert out.extra_tokens == out.generated_tokens - kept - (out.finish_reason == "eos") > 0


def test_rollback_crops_the_cache_and_never_prefills_again(qwen):
    calls = []
    original = qwen.model.forward

    def counting(*args, **kwargs):
        calls.append(kwargs["input_ids"].shape[1])
        return original(*args, **kwargs)

    config = ControllerConfig(max_new_tokens=30, rollback=3, rollback_mode="fixed", cooldown=0, stability_window=0,
                              cot_length=2, cot_policy="unlimited")  # fmt: skip
    controller = RAUQController(qwen, config, scorer_for(qwen), Scripted({6}))
    qwen.model.forward = counting
    try:
        out = controller.generate(prompt_of(qwen))
    finally:
        del qwen.model.forward
    prompt_len = qwen.encode([prompt_of(qwen)])["input_ids"].shape[1]
    event = out.trigger_events[0]
    assert (event.position, event.rollback_target, event.rollback_depth, event.clipped) == (6, 3, 3, False)
    assert calls[0] == prompt_len and prompt_len not in calls[1:]  # one prefill only
    multi = [n for n in calls[1:] if n != 1]  # after the prefill: single tokens and the thought delimiters
    assert multi == [n for n in (len(controller.prefix_ids), len(controller.suffix_ids)) if n != 1]


# ---- the trigger rules ---------------------------------------------------------------------------


def events_for(lm, calls, **knobs):
    knobs = {"max_new_tokens": 40, "stability_window": 0, "cot_length": 2, "cot_policy": "unlimited",
             "rollback_mode": "fixed", **knobs}  # fmt: skip
    controller = RAUQController(lm, ControllerConfig(**knobs), scorer_for(lm), Scripted(calls))
    return controller.generate(prompt_of(lm)), controller


def test_cooldown_and_max_triggers(qwen):
    # Calls 0..: the call after a repair resumes counting; with cooldown 4, calls within 4 greedy
    # tokens after a repair do not fire.
    out, _ = events_for(qwen, set(range(40)), repair="none", cooldown=4, max_triggers=3)
    assert [e.position for e in out.trigger_events] == [0, 5, 10]
    out, _ = events_for(qwen, set(range(40)), repair="none", cooldown=0, max_triggers=100, max_new_tokens=7)
    assert [e.position for e in out.trigger_events] == list(range(7))
    out, _ = events_for(qwen, set(range(40)), repair="none", max_triggers=0)
    assert out.trigger_events == []


def test_rollback_deeper_than_the_text_is_clipped_and_logged(qwen):
    out, _ = events_for(qwen, {2}, rollback=10)
    e = out.trigger_events[0]
    assert (e.position, e.rollback_target, e.clipped, e.cot_span[0]) == (2, 0, True, 0)
    # a second repair never rolls back into the first one's thought
    out, _ = events_for(qwen, {2, 8}, rollback=10, cooldown=0)
    first, second = out.trigger_events
    assert second.floor == first.cot_span[1] == second.rollback_target and second.clipped


def test_anchor_rollback_goes_back_to_the_last_clause_end(qwen):
    controller = RAUQController(
        qwen, ControllerConfig(rollback_mode="anchor"), scorer_for(qwen), Scripted(())
    )
    texts = ["The", " river", ",", " then", " the", " sea", ".", " It", " is"]
    controller.tokens = [Token(i, t, "greedy", 0.0, 0.0, 0.0) for i, t in enumerate(texts)]
    assert controller.rollback_target(0, None) == (7, False)  # just after "."
    assert controller.rollback_target(0, 7) == (3, False)  # escalation: the anchor before, after ","
    assert controller.rollback_target(0, 3) == (0, True)  # none left: the floor
    assert controller.rollback_target(5, 7) == (5, True)
    fixed = RAUQController(
        qwen, ControllerConfig(rollback=2, rollback_mode="fixed"), scorer_for(qwen), Scripted(())
    )
    fixed.tokens = controller.tokens
    assert fixed.rollback_target(0, None) == (7, False)
    assert fixed.rollback_target(0, 7) == (5, False)  # escalation: K more than the undone cut


def test_sentence_rollback_goes_back_to_the_start_of_the_sentence_that_fired(qwen):
    controller = RAUQController(
        qwen, ControllerConfig(rollback_mode="sentence"), scorer_for(qwen), Scripted(())
    )
    texts = ["He", " was", " born", " in", " 19", "30", ".", " List", ":", " 1", ".", " The", " river", ","]
    controller.tokens = [Token(i, t, "greedy", 0.0, 0.0, 0.0) for i, t in enumerate(texts)]
    assert controller.rollback_target(0, None) == (7, False)  # after "1930.", not after the list "1."
    assert controller.rollback_target(0, 7) == (0, True)  # escalation: no sentence before, the floor
    assert controller.rollback_target(9, None) == (9, True)


def test_an_unstable_repair_is_undone_and_redone_deeper(qwen):
    # call 3 fires (trigger), the next greedy call after the thought fires inside the window
    out, _ = events_for(qwen, {3, 4}, rollback=1, stability_window=3, cooldown=10)
    first, second = out.trigger_events
    assert (first.kept, first.stable) == (False, False)
    assert second.escalated_from == 0 and second.kept
    assert second.rollback_target == first.rollback_target - 1
    assert second.stable is True  # nothing fired in its own window
    # the undone thought is gone from the completion: exactly one thought span remains
    kinds = "".join("f" if t.kind == "forced" else "c" if t.kind == "cot" else "g" for t in out.tokens)
    assert kinds.count("c" * 2) == 1 and out.stats["escalations"] == 1


def test_max_new_tokens_bounds_everything_generated(qwen):
    out, _ = events_for(qwen, set(range(100)), cooldown=0, max_new_tokens=15, cot_length=4)
    assert out.generated_tokens == 15 and out.finish_reason == "length"
    assert out.extra_tokens == out.generated_tokens - sum(t.kind != "forced" for t in out.tokens)


@pytest.mark.parametrize(("policy", "length", "expected"), [("max20", 25, 20), ("unlimited", 25, 25)])
def test_cot_policies_cap_the_thought(qwen, policy, length, expected):
    controller = RAUQController(qwen, ControllerConfig(cot_policy=policy, cot_length=length, max_new_tokens=80,
                                stability_window=0), scorer_for(qwen), Scripted({1}))  # fmt: skip
    controller.eos = set()  # a random model may sample eos; the caps are what is tested here
    out = controller.generate(prompt_of(qwen))
    assert out.trigger_events[0].cot_tokens == expected and out.trigger_events[0].cot_stop == "length"


class ScriptedThoughts(RAUQController):
    """Thought tokens come from a script of texts (one token each) instead of the sampler."""

    def __init__(self, *args, thought, **kwargs):
        super().__init__(*args, **kwargs)
        self.script = [
            self.lm.tokenizer.convert_tokens_to_ids(self.lm.tokenizer.tokenize(t))[0] for t in thought
        ]

    def sample(self, allow_eos=True):
        self.count()
        return self.candidate(self.script[sum(t.kind == "cot" for t in self.tokens) % len(self.script)])


def test_a_rauq_thought_ends_only_after_its_minimum_at_a_sentence_end(qwen):
    # call 1 fires; every look-ahead is calm. Thought tokens: "The river . The sea is . ..." - the
    # first "." comes after 3 tokens (under the minimum of 4), the second after 7.
    thought = ["The", " river", ".", " The", " sea", " is", "."]
    config = ControllerConfig(cot_policy="rauq", cot_length=12, cot_min_tokens=4, cot_horizon=3,
                              max_new_tokens=60, stability_window=0)  # fmt: skip
    controller = ScriptedThoughts(qwen, config, scorer_for(qwen), Scripted({1}), thought=thought)
    out = controller.generate(prompt_of(qwen))
    e = out.trigger_events[0]
    assert (e.cot_tokens, e.cot_stop) == (7, "signal")
    start, end = e.cot_span
    span = [t.id for t in out.tokens[start:end]]
    assert span[: len(controller.prefix_ids)] == controller.prefix_ids
    assert span[-len(controller.suffix_ids) :] == controller.suffix_ids
    assert [t.kind for t in out.tokens[end : end + 3]] == ["greedy"] * 3  # the calm look-ahead is kept
    # without a sentence end the thought runs to its length
    controller = ScriptedThoughts(qwen, config, scorer_for(qwen), Scripted({1}), thought=["The", " river"])
    e = controller.generate(prompt_of(qwen)).trigger_events[0]
    assert (e.cot_tokens, e.cot_stop) == (12, "length")


def test_a_thought_shorter_than_its_minimum_never_samples_eos(qwen):
    controller = RAUQController(qwen, ControllerConfig(), scorer_for(qwen), Threshold.fixed(1.0, "rauq"))
    controller._begin(None, 0)
    logits = torch.zeros(len(qwen.tokenizer))
    logits[list(controller.eos)] = 50.0  # eos holds all the mass
    controller.logits, controller._attn = logits, None
    assert all(controller.sample(allow_eos=False).id not in controller.eos for _ in range(20))
    assert controller.sample(allow_eos=True).id in controller.eos


@pytest.mark.parametrize(
    ("text", "closed"),
    [("He was born in 1930.", True), ("Is it? ", True), ('He said "yes."', True), ("Paris\n", True),
     ("2.", False), ("so\n1.", False), ("Steps: 1.", False), ("It cost 3.5.", True), ("The river", False), ("", False), ("Dr", False)],
)  # fmt: skip
def test_sentence_closed(text, closed):
    assert sentence_closed(text) is closed


def test_the_judged_answer_cuts_kept_thoughts_out_and_drops_the_debris_at_the_seam(qwen):
    controller = RAUQController(qwen, ControllerConfig(), scorer_for(qwen), Threshold.fixed(1.0, "rauq"))
    tok = qwen.tokenizer

    def tokens(text, kind):
        return [
            Token(i, tok.decode([i]), kind, 0.0, 0.0, 0.0)
            for i in tok(text, add_special_tokens=False)["input_ids"]
        ]

    head, prefix = tokens("It is big.", "greedy"), tokens(" Wait.", "forced")
    thought, suffix, tail = tokens(" France", "cot"), tokens(" So", "forced"), tokens(": Paris.", "greedy")
    controller._begin(None, 0, head + prefix + thought + suffix + tail)
    start, end = len(head), len(head) + len(prefix) + len(thought) + len(suffix)
    controller.events = [TriggerEvent(3, 2.0, "cot", 3, rollback_target=start, cot_span=[start, end])]
    out = controller._output("eos", 0.0)
    assert out.answer == "It is big. Paris." and out.completion.startswith("It is big. Wait.")
    controller._begin(None, 0, prefix + thought + suffix + tail)  # a thought at the start: no seam left
    controller.events = [TriggerEvent(0, 2.0, "cot", 1, rollback_target=0, cot_span=[0, end - start])]
    assert controller._output("eos", 0.0).answer == "Paris."
    controller.events[0].kept = False  # an undone thought leaves the greedy text as generated
    assert controller._output("eos", 0.0).answer == ": Paris."


def test_abstain_stops_at_the_trigger_with_the_abstention_text(qwen):
    out, _ = events_for(qwen, {2}, repair="abstain", abstain_text="No idea.")
    (e,) = out.trigger_events
    assert out.abstained and out.answer == "No idea." and out.finish_reason == "abstain"
    assert (e.action, e.position) == ("abstain", 2) and [t.kind for t in out.tokens] == ["greedy"] * 2
    assert out.generated_tokens == 3 and out.extra_tokens == 1  # the fired token is not kept
    assert out.to_json()["abstained"] is True


def test_an_unstable_repair_abstains_with_the_abstain_fallback(qwen):
    out, _ = events_for(qwen, {3, 4}, repair="cot+abstain", rollback=1, stability_window=3, cooldown=10)
    first, second = out.trigger_events
    assert (first.action, first.stable, second.action, second.escalated_from) == ("cot", False, "abstain", 0)
    assert out.abstained and out.answer == "I am not sure."
    # a stable repair is kept and answered
    out, _ = events_for(qwen, {3}, repair="cot+abstain", rollback=1, stability_window=3, cooldown=10)
    assert not out.abstained and out.trigger_events[0].stable is True
    # rerank: the tokens after the reranked one are its window
    out, _ = events_for(qwen, {2, 3}, repair="rerank+abstain", stability_window=2)
    first, second = out.trigger_events
    assert (first.action, first.stable, second.action) == ("rerank", False, "abstain") and out.abstained
    out, _ = events_for(qwen, {2, 3}, repair="rerank", stability_window=2, cooldown=0)
    assert not out.abstained and [e.action for e in out.trigger_events] == ["rerank", "rerank"]


def test_answer_uncertainty_of_plain_greedy_matches_a_full_forward_pass(qwen):
    scorer = scorer_for(qwen)
    controller = RAUQController(
        qwen, ControllerConfig(max_new_tokens=10), scorer, Threshold.fixed(math.inf, "rauq")
    )
    prompt = prompt_of(qwen)
    out = controller.generate(prompt)
    prompt_ids = qwen.encode([prompt])["input_ids"][0].tolist()
    ids = [t.id for t in out.tokens]
    with torch.no_grad():
        logits = qwen.model(torch.tensor([prompt_ids + ids])).logits[0].double()
    logp = torch.log_softmax(logits[len(prompt_ids) - 1 : -1], -1)
    chosen = logp[range(len(ids)), ids]
    forced = score_completion(qwen, prompt_ids, ids, scorer.layers, scorer.alpha, scorer.heads)
    u = out.uncertainty
    assert u["msp"] == pytest.approx(-chosen.sum().item(), abs=1e-3)
    assert u["mean_nll"] == pytest.approx(-chosen.mean().item(), abs=1e-4)
    assert u["mean_entropy"] == pytest.approx(-(logp.exp() * logp).sum(-1).mean().item(), abs=1e-4)
    assert u["rauq"] == pytest.approx(forced.sequence, rel=1e-3)
    assert u["max_rauq"] == u["peak_signal"] == pytest.approx(max(forced.tokens), rel=1e-3)


def test_thoughts_are_excised_from_the_answer_and_reproducible(qwen):
    out, _ = events_for(qwen, {2}, cot_length=4)
    answer_ids = [t.id for t in out.tokens if t.kind in ("greedy", "rerank")]
    assert out.answer == qwen.tokenizer.decode(answer_ids, skip_special_tokens=True).strip()
    assert out.answer != out.completion
    again, _ = events_for(qwen, {2}, cot_length=4)
    assert [t.id for t in again.tokens] == [t.id for t in out.tokens]  # same seed, same thought


def test_rerank_commits_the_best_rolled_out_candidate(qwen):
    config = ControllerConfig(repair="rerank", rerank_k=3, rerank_lookahead=2, max_new_tokens=30)
    controller = RAUQController(qwen, config, scorer_for(qwen), Scripted({2}))
    prompt = prompt_of(qwen)
    out = controller.generate(prompt)
    e = out.trigger_events[0]
    prompt_ids = qwen.encode([prompt])["input_ids"][0].tolist()
    head = [t.id for t in out.tokens[: e.position]]
    with torch.no_grad():
        logp = torch.log_softmax(qwen.model(torch.tensor([prompt_ids + head])).logits[0, -1].double(), -1)
    assert [c["token"] for c in e.candidates] == logp.topk(3).indices.tolist()
    for c in e.candidates:  # mean log-prob of the candidate and its greedy roll-out, recomputed
        seq = [c["token"]]
        for _ in range(2):
            with torch.no_grad():
                nxt = qwen.model(torch.tensor([prompt_ids + head + seq])).logits[0, -1].argmax().item()
            if nxt in controller.eos:
                break
            seq.append(nxt)
        want = full_logprobs(qwen, prompt_ids, head + seq)[len(head) :]
        assert c["score"] == pytest.approx(float(np.mean(want)), abs=1e-4)
    best = max(e.candidates, key=lambda c: c["score"])
    assert out.tokens[e.position].id == best["token"] and out.tokens[e.position].kind == "rerank"


def test_output_is_json_without_nans(qwen):
    out, _ = events_for(qwen, {2})
    doc = json.loads(json.dumps(out.to_json(), allow_nan=False))
    assert doc["rauq_scores"].count(None) == sum(t.kind == "forced" for t in out.tokens) > 0
    assert doc["trigger_events"][0]["action"] == "cot" and doc["stats"]["triggers"] == 1


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"trigger": "rauq", "scorer": None}, "needs calibrated heads"),
        ({"trigger": "entropy"}, "the threshold is for 'rauq'"),
        ({"cot_prefix": ""}, "must each encode to at least one token"),
    ],
)
def test_bad_controller_setups(qwen, kwargs, message):
    scorer = kwargs.pop("scorer", scorer_for(qwen))
    with pytest.raises(BadInput, match=message):
        RAUQController(qwen, ControllerConfig(**kwargs), scorer, Threshold.fixed(1.0, "rauq"))


def test_config_errors_name_the_knob():
    with pytest.raises(BadInput, match="--cot-top-p"):
        ControllerConfig.build(cot_top_p=1.5)
    with pytest.raises(BadInput, match="--repair"):
        ControllerConfig.build(repair="magic")


def test_empty_prompt_is_refused(qwen):
    controller = RAUQController(qwen, ControllerConfig(), scorer_for(qwen), Threshold.fixed(1.0, "rauq"))
    with pytest.raises(BadInput, match="prompt is empty"):
        controller.generate("  ")


# ---- batches -------------------------------------------------------------------------------------

PROMPTS = ["Hi", "Tell me about the river and the mountain, please.", "What is water?", "Name a planet."]


@pytest.mark.parametrize(("fire", "repair"), [(False, "cot"), (True, "cot"), (True, "abstain")])
def test_a_batch_decodes_like_one_sequence_at_a_time(lm, fire, repair):
    scorer = scorer_for(lm)
    config = ControllerConfig(max_new_tokens=10, cot_length=3, stability_window=1, repair=repair)
    prompts = [prompt_of(lm, p) for p in PROMPTS]
    plain = RAUQController(lm, config, scorer, Threshold.fixed(math.inf, "rauq")).generate_batch(prompts)
    # fire: a theta above every first token's score, so that rows leave the batch mid-answer
    theta = max(o.rauq_scores[0] for o in plain) + 1e-3 if fire else math.inf
    controller = RAUQController(lm, config, scorer, Threshold.fixed(theta, "rauq"))
    seeds = [11, 12, 13, 14]
    start = time.perf_counter()
    batched = controller.generate_batch(prompts, seeds, batch_size=3)
    wall = time.perf_counter() - start
    # latency is the time spent on each answer: together, (nearly) the whole call
    assert all(o.latency_s > 0 for o in batched) and 0.7 * wall < sum(o.latency_s for o in batched) <= wall
    alone = [controller.generate(p, seed) for p, seed in zip(prompts, seeds, strict=True)]
    for b, a in zip(batched, alone, strict=True):
        assert [t.id for t in b.tokens] == [t.id for t in a.tokens]
        assert [t.kind for t in b.tokens] == [t.kind for t in a.tokens]
        assert [t.logprob for t in b.tokens] == pytest.approx(
            [t.logprob for t in a.tokens], abs=1e-4, nan_ok=True
        )
        assert np.allclose(b.rauq_scores, a.rauq_scores, rtol=1e-3, equal_nan=True)
        assert [(e.position, e.rollback_target) for e in b.trigger_events] == [
            (e.position, e.rollback_target) for e in a.trigger_events
        ]
        assert (b.generated_tokens, b.extra_tokens, b.finish_reason) == (a.generated_tokens, a.extra_tokens,
                                                                         a.finish_reason)  # fmt: skip
        assert (b.abstained, b.answer) == (a.abstained, a.answer)
    if fire:  # rows left the batch after greedy tokens of their own
        assert any(o.trigger_events and o.trigger_events[0].position > 0 for o in batched)


def test_a_repair_that_does_not_read_as_an_answer_is_abstained_with_the_fallback(qwen):
    seen = []

    def check(answer):
        seen.append(answer)
        return False

    for repair, abstains in (("cot+abstain", True), ("cot", False)):
        config = ControllerConfig(repair=repair, max_new_tokens=40, stability_window=0, cot_length=2,
                                  cot_policy="unlimited", rollback_mode="fixed")  # fmt: skip
        controller = RAUQController(qwen, config, scorer_for(qwen), Scripted({2}))
        out = controller.generate(prompt_of(qwen), check=check)
        assert out.abstained is abstains
        if abstains:
            last = out.trigger_events[-1]
            assert (last.action, last.reason, last.escalated_from) == ("abstain", "malformed", 0) and seen
    # an answer nobody repaired is never checked
    seen.clear()
    controller = RAUQController(qwen, ControllerConfig(repair="cot+abstain", max_new_tokens=8), scorer_for(qwen),
                                Threshold.fixed(math.inf, "rauq"))  # fmt: skip
    assert not controller.generate(prompt_of(qwen), check=check).abstained and not seen


def test_a_thought_leaves_room_for_the_answer(qwen):
    from halluc_rauq.controller import ANSWER_RESERVE

    out, _ = events_for(qwen, {3}, max_new_tokens=24, cot_length=20, cot_min_tokens=2)
    e = out.trigger_events[0]
    assert e.cot_tokens <= 24 - 4 - ANSWER_RESERVE and e.cot_stop == "length"
    # no room for even the shortest thought and an answer: log the trigger, or abstain with the fallback
    out, _ = events_for(qwen, {3}, max_new_tokens=4 + ANSWER_RESERVE, cot_min_tokens=2)
    assert [e.action for e in out.trigger_events] == ["none"] and not out.abstained
    out, _ = events_for(qwen, {3}, max_new_tokens=4 + ANSWER_RESERVE, cot_min_tokens=2, repair="cot+abstain")
    assert out.abstained and out.trigger_events[0].reason == "no room"


def test_plain_greedy_is_the_same_decode_in_every_command(tiny_qwen2):
    """calibrate score (`ucli.generation.generate`), control eval --baseline (the controller with no
    trigger) and probe generate (the hf backend at temperature 0) give the same tokens for the same
    prompts and settings (issue 18)."""
    from halluc_backends.base import SamplingParams
    from halluc_backends.hf import HFBackend
    from halluc_rauq import ControllerConfig, RAUQController, Threshold

    lm = load_model(str(tiny_qwen2), device="cpu")
    questions = [
        "Who wrote Hamlet?",
        "What is the capital of Italy, and why is it famous?",
        "2+2?",
        "Name a planet.",
    ]
    prompts = [lm.chat_prompt(q) for q in questions]
    score = [g["token_ids"] for g in generate(lm, prompts, 10)]
    plain = ControllerConfig.build(max_triggers=0, trigger="entropy", max_new_tokens=10)
    control = RAUQController(lm, plain, None, Threshold.fixed(float("inf"), "entropy")).generate_batch(
        prompts
    )
    backend = HFBackend(str(tiny_qwen2), device="cpu")
    backend._client = lm
    probe = backend.generate_batch(questions, SamplingParams(temperature=0.0, max_tokens=10, top_logprobs=1))
    assert [[t.id for t in o.tokens] for o in control] == score
    assert [[p["id"] for p in g.token_logprobs] for g in probe] == score


@pytest.mark.parametrize(
    ("pieces", "answer"),
    [
        (["The capital of", "Tehran"], "Tehran"),  # an unfinished sentence before the thought goes
        (["Lol", "Lolita"], "Lolita"),
        (["The Metamorph", "The Metamorphosis"], "The Metamorphosis"),
        (
            ["Emma was written by Jane Austen.", "Jane Austen."],
            "Emma was written by Jane Austen. Jane Austen.",
        ),
        (["Paris is in France.", "It is", "Paris."], "Paris is in France. Paris."),
        (["Paris."], "Paris."),  # no thought: the answer as decoded
        (["", ""], ""),
    ],
)
def test_the_judged_answer_after_a_thought_is_what_follows_its_cue(pieces, answer):
    """After a kept thought the answer is what follows its closing cue ("So the answer is"); text
    before a thought counts only as finished sentences, so nothing is cut or said twice at a seam."""
    from halluc_rauq.control_text import judged_answer

    assert judged_answer(pieces) == answer


@pytest.mark.parametrize(
    ("pieces", "answer"),
    [  # whole-test facts answers of issue 30: the model echoes the thought's opening after its cue
        (["", "Mong Wait, let me think."], "Mong"),
        (["", "The Old Man and the Sea is Wait, let me think."], "The Old Man and the Sea is"),
        (["", "Wait, let me think."], ""),
        (
            ["Paris. WAIT, let me think. Hmm", "Paris."],
            "Paris. Paris.",
        ),  # a finished sentence before it stays
        (["", "Wait"], ""),  # the echo cut short at the end
        (["", "Mong Wait, let"], "Mong"),
        (["Wait a minute.", "No."], "Wait a minute. No."),  # not the opening's end: nothing cut
        (["", "Ottawa"], "Ottawa"),
    ],
)
def test_a_model_that_echoes_the_thought_opening_has_answered_before_it(pieces, answer):
    from halluc_rauq.control_text import judged_answer

    assert judged_answer(pieces, " Wait, let me think. ") == answer
