"""Result files in, statistics out: lm-eval samples, halluc JSONL, CSV and Parquet, seeds, pairing, CLI."""

import json
import random

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from halluc_stats import load_pairs, load_tables, mcnemar, paired_bootstrap
from ucli.artifacts import write_csv, write_parquet
from ucli.errors import BadInput


def lmeval(path, values, field="acc", hashes=None, as_text=True):
    """An lm-evaluation-harness samples file (metrics stored as strings, as some versions do)."""
    with open(path, "w") as fh:
        for i, v in enumerate(values):
            rec = {
                "doc_id": i,
                "doc_hash": (hashes or {}).get(i, f"h{i}"),
                "resps": "[['x']]",
                field: str(v) if as_text else v,
            }
            fh.write(json.dumps(rec) + "\n")
    return path


def seeds(tmp_path, name, p, n=120, k=3, seed=0):
    rng = np.random.default_rng(seed)
    return [
        lmeval(tmp_path / f"samples_arc_{name}_seed{s}.jsonl", (rng.random(n) < p).astype(float))
        for s in range(k)
    ]


def test_lmeval_strings_are_parsed_and_paired_on_doc_id(tmp_path):
    a = lmeval(tmp_path / "samples_a.jsonl", [1.0, 0.0, 1.0, 1.0])
    b = lmeval(tmp_path / "samples_b.jsonl", ["True", "[1.0]", 0, "false"])
    (p,) = load_pairs(str(a), str(b), "acc")
    assert p.keys == ["0", "1", "2", "3"] and list(p.a) == [1, 0, 1, 1] and list(p.b) == [1, 1, 0, 0]


def test_glob_gives_per_seed_results_and_a_pooled_one_matched_by_seed_label(tmp_path):
    seeds(tmp_path, "base", 0.5, seed=1)
    b = seeds(tmp_path, "tuned", 0.6, seed=2)
    b[0].rename(tmp_path / "zz_samples_arc_tuned_seed0.jsonl")  # sorted order no longer matches; labels do
    pairs = load_pairs(
        str(tmp_path / "samples_arc_base_seed*.jsonl"),
        str(tmp_path / "*samples_arc_tuned_seed*.jsonl"),
        "acc",
    )
    assert [p.label for p in pairs] == ["seed0", "seed1", "seed2"]
    assert pairs[0].paths[1].name == "zz_samples_arc_tuned_seed0.jsonl"


def test_unpaired_items_are_an_error_unless_allowed(tmp_path):
    a = lmeval(tmp_path / "samples_a.jsonl", [1, 0, 1, 1, 0])
    b = lmeval(tmp_path / "samples_b.jsonl", [1, 1, 0])
    with pytest.raises(
        BadInput, match=r"2 item\(s\) only in A \(e.g. '3', '4'\), 0 only in B; pass --allow-unpaired"
    ):
        load_pairs(str(a), str(b), "acc")
    (p,) = load_pairs(str(a), str(b), "acc", allow_unpaired=True)
    assert len(p.keys) == 3 and p.only_a == ["3", "4"]


def test_cli_reports_the_unpaired_items_it_left_out(cli, tmp_path):
    a = lmeval(tmp_path / "samples_a.jsonl", [1, 0, 1, 1, 0])
    b = lmeval(tmp_path / "samples_b.jsonl", [1, 1, 0])
    res = cli("stats", "mcnemar", a, b, "--field", "acc", "--allow-unpaired")
    assert res.exit_code == 0
    assert "left out 2 item(s) only in A and 0 only in B" in res.stderr and "2 / 0" in res.stdout


@pytest.mark.parametrize(
    ("setup", "message"),
    [
        (
            lambda d: (
                lmeval(d / "samples_a.jsonl", [1, 0]),
                lmeval(d / "samples_b.jsonl", [1, 0], hashes={1: "other"}),
            ),
            "samples_b.jsonl:2: doc_hash differs from",
        ),
        (
            lambda d: (
                lmeval(d / "samples_a.jsonl", [1, 0]),
                lmeval(d / "samples_b.jsonl", [1, float("nan")], as_text=False),
            ),
            "field 'acc': nan is not a finite number",
        ),
        (
            lambda d: (
                lmeval(d / "samples_a.jsonl", [1, 0]),
                lmeval(d / "samples_b.jsonl", [1, 0], field="accuracy"),
            ),
            "samples_b.jsonl:1: no field 'acc' (fields: accuracy, doc_hash, doc_id, resps)",
        ),
        (
            lambda d: (lmeval(d / "samples_a.jsonl", [1, "maybe"]), lmeval(d / "samples_b.jsonl", [1, 0])),
            "samples_a.jsonl:2: field 'acc': expected a number, found 'maybe'",
        ),
        (lambda d: ((d / "a.jsonl").write_text(""), d / "a.jsonl")[1:] * 2, "a.jsonl: file is empty"),
    ],
)
def test_bad_result_files(cli, tmp_path, setup, message):
    a, b = setup(tmp_path)
    with pytest.raises(BadInput) as info:
        load_pairs(str(a), str(b), "acc")
    assert message in str(info.value)
    res = cli("stats", "mcnemar", a, b, "--field", "acc")
    assert res.exit_code == 2 and res.stderr.strip().splitlines() == [f"error: {info.value}"]


def test_no_overlapping_keys_and_unequal_seed_counts(tmp_path):
    (tmp_path / "a.jsonl").write_text('{"id": "x", "acc": 1}\n')
    (tmp_path / "b.jsonl").write_text('{"id": "y", "acc": 1}\n')
    with pytest.raises(BadInput, match="no id in common"):
        load_pairs(str(tmp_path / "a.jsonl"), str(tmp_path / "b.jsonl"), "acc")
    with pytest.raises(BadInput, match=r"A matches 2 file\(s\) but B matches 1"):
        load_pairs(str(tmp_path / "[ab].jsonl"), str(tmp_path / "b.jsonl"), "acc")
    with pytest.raises(BadInput, match="no file matches"):
        load_pairs(str(tmp_path / "nothing*.jsonl"), str(tmp_path / "b.jsonl"), "acc")


def test_per_arm_outputs_pair_on_sample_id_without_key(cli, tmp_path):
    """control eval / demo write `id` = arm:sample; `sample_id` pairs them (issue 17, item 12)."""
    arms = {"baseline": [1, 0, 0, 1, 0], "controller": [1, 1, 0, 1, 1]}
    for arm, values in arms.items():
        (tmp_path / f"{arm}.jsonl").write_text("".join(
            json.dumps({"id": f"{arm}:q{i}", "sample_id": f"q{i}", "correct": v}) + "\n" for i, v in enumerate(values)
        ))  # fmt: skip
    [paired] = load_pairs(str(tmp_path / "baseline.jsonl"), str(tmp_path / "controller.jsonl"), "correct")
    assert paired.keys == [f"q{i}" for i in range(5)]
    assert list(paired.a) == arms["baseline"] and list(paired.b) == arms["controller"]
    res = cli("stats", "mcnemar", tmp_path / "baseline.jsonl", tmp_path / "controller.jsonl", "--field", "correct",
              "--json")  # fmt: skip
    assert res.exit_code == 0, res.stderr
    assert json.loads(res.stdout)["groups"][0]["c"] == 2


def test_csv_and_parquet_inputs_and_nested_fields(tmp_path):
    rows = [{"id": f"q{i}", "unc": i / 10, "acc": i % 2} for i in range(10)]
    write_csv(tmp_path / "r.csv", rows)
    write_parquet(tmp_path / "r.parquet", rows)
    (tmp_path / "r.jsonl").write_text(
        "".join(json.dumps({"id": r["id"], "m": {"acc": r["acc"]}}) + "\n" for r in rows)
    )
    csv_t, pq_t = load_tables([str(tmp_path / "r.csv"), str(tmp_path / "r.parquet")], ["unc", "acc"])
    assert np.array_equal(csv_t.values["acc"], pq_t.values["acc"]) and np.array_equal(
        csv_t.values["unc"], pq_t.values["unc"]
    )
    nested = load_tables(str(tmp_path / "r.jsonl"), ["m.acc"])[0]
    assert list(nested.values["m.acc"]) == [r["acc"] for r in rows]


@settings(max_examples=25, deadline=None)
@given(
    st.lists(st.tuples(st.integers(0, 1), st.integers(0, 1), st.floats(0, 1)), min_size=2, max_size=40),
    st.randoms(),
)
def test_relabelling_and_reordering_keys_changes_nothing(tmp_path_factory, items, rnd):
    d = tmp_path_factory.mktemp("relabel")

    def write(name, keys, order):
        with open(d / name, "w") as fh:
            for i in order:
                fh.write(
                    json.dumps(
                        {
                            "id": keys[i],
                            "acc": items[i][0 if "a" in name else 1],
                            "mc2": items[i][2] if "a" in name else 1 - items[i][2],
                        }
                    )
                    + "\n"
                )

    n = len(items)
    write("a1.jsonl", [f"k{i}" for i in range(n)], range(n))
    write("b1.jsonl", [f"k{i}" for i in range(n)], range(n))
    new_keys = [f"renamed-{rnd.random()}-{i}" for i in range(n)]
    order_a, order_b = rnd.sample(range(n), n), rnd.sample(range(n), n)
    write("a2.jsonl", new_keys, order_a)
    write("b2.jsonl", new_keys, order_b)
    (p1,), (p2,) = (
        load_pairs(str(d / "a1.jsonl"), str(d / "b1.jsonl"), "acc"),
        load_pairs(str(d / "a2.jsonl"), str(d / "b2.jsonl"), "acc"),
    )
    r1, r2 = mcnemar(p1.a, p1.b), mcnemar(p2.a, p2.b)
    assert (r1.b, r1.c, r1.p_value, r1.ci_low) == (r2.b, r2.c, r2.p_value, r2.ci_low)
    (m1,), (m2,) = (
        load_pairs(str(d / "a1.jsonl"), str(d / "b1.jsonl"), "mc2"),
        load_pairs(str(d / "a2.jsonl"), str(d / "b2.jsonl"), "mc2"),
    )
    assert paired_bootstrap(m1.a, m1.b).estimate == pytest.approx(paired_bootstrap(m2.a, m2.b).estimate)


# --- CLI -------------------------------------------------------------------------------------


def test_cli_mcnemar_json_equals_the_api_and_pools_seeds(cli, tmp_path):
    seeds(tmp_path, "base", 0.5, seed=1)
    seeds(tmp_path, "tuned", 0.62, seed=2)
    a, b = str(tmp_path / "samples_arc_base_seed*.jsonl"), str(tmp_path / "samples_arc_tuned_seed*.jsonl")
    res = cli("stats", "mcnemar", a, b, "--field", "acc", "--json", "--output", tmp_path / "mc.json")
    assert res.exit_code == 0, res.stderr
    report = json.loads(res.stdout)
    pairs = load_pairs(a, b, "acc")
    for group, p in zip(report["groups"], pairs, strict=True):
        api = mcnemar(p.a, p.b)
        assert (group["label"], group["b"], group["c"], group["p_value"]) == (
            p.label,
            api.b,
            api.c,
            api.p_value,
        )
    pooled = mcnemar(np.concatenate([p.a for p in pairs]), np.concatenate([p.b for p in pairs]))
    assert report["pooled"]["p_value"] == pooled.p_value and report["pooled"]["n_pairs"] == 360
    doc = json.loads((tmp_path / "mc.json").read_text())
    assert doc["provenance"]["schema"] == "halluc.stats.mcnemar" and len(doc["provenance"]["inputs"]) == 6
    assert doc["groups"] == report["groups"]


def test_cli_counts_mode_and_table(cli):
    res = cli("stats", "mcnemar", "--b", 12, "--c", 4)
    assert res.exit_code == 0 and "0.07681" in res.stdout and "exact" in res.stdout
    assert cli("stats", "mcnemar", "x.jsonl", "--b", 1, "--c", 2).exit_code == 2


def test_cli_refuses_non_binary_values_naming_the_file(cli, tmp_path):
    a = lmeval(tmp_path / "samples_a.jsonl", [1, 0.5])
    b = lmeval(tmp_path / "samples_b.jsonl", [1, 0])
    res = cli("stats", "mcnemar", a, b, "--field", "acc")
    assert res.exit_code == 2
    assert (
        res.stderr.strip()
        == f"error: {a}: field 'acc' (A): McNemar needs binary values (0/1, true/false); found 0.5"
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--field", "nope"], "no field 'nope' (fields: acc, doc_hash, doc_id, resps)"),
        (["--field", "acc", "--key", "id"], "no key field 'id'"),
    ],
)
def test_cli_bad_input_is_one_line_exit_2(cli, tmp_path, args, message):
    a = lmeval(tmp_path / "samples_a.jsonl", [1, 0])
    res = cli("stats", "paired-bootstrap", a, a, *args)
    assert res.exit_code == 2 and message in res.stderr and len(res.stderr.strip().splitlines()) == 1


def test_cli_paired_bootstrap_bootstrap_auroc_prr(cli, tmp_path):
    rng = random.Random(0)
    rows = [{"id": i, "unc": rng.random(), "acc": int(rng.random() < 0.5)} for i in range(80)]
    for r in rows:
        r["unc"] = r["unc"] + (0.0 if r["acc"] else 0.6)
    write_csv(tmp_path / "u.csv", rows)
    out = json.loads(
        cli("stats", "bootstrap", tmp_path / "u.csv", "--field", "acc", "--method", "bca", "--json").stdout
    )
    assert out["groups"][0]["estimate"] == pytest.approx(np.mean([r["acc"] for r in rows]))
    res = cli(
        "stats",
        "auroc",
        tmp_path / "u.csv",
        "--score",
        "unc",
        "--label",
        "acc",
        "--lower-is-positive",
        "--json",
    )
    assert res.exit_code == 0, res.stderr
    assert json.loads(res.stdout)["groups"][0]["auroc"] > 0.7
    png = tmp_path / "curve.png"
    res = cli("stats", "prr", tmp_path / "u.csv", "--score", "unc", "--quality", "acc", "--plot", png)
    assert res.exit_code == 0, res.stderr
    assert "PRR" in res.stdout and png.read_bytes()[:4] == b"\x89PNG"
    res = cli("stats", "paired-bootstrap", tmp_path / "u.csv", tmp_path / "u.csv", "--field", "unc", "--json")
    assert json.loads(res.stdout)["groups"][0]["p_value"] == 1.0
