"""The field's benchmarks, offline: fixture rows in each data set's exact hub schema (first rows as
the hub serves them, long texts shortened), loaded through the real loader as a local copy; each
prompt against its reference's layout; each verdict by the benchmark's rule."""

import json

import pytest

from halluc_benchmarks import get_benchmark
from ucli.errors import BadInput

TRIVIA = {"question": "Which American-born Sinclair won the Nobel Prize for Literature in 1930?",
          "question_id": "tc_1", "question_source": "http://www.triviacountry.com/",
          "entity_pages": {"doc_source": [], "filename": [], "title": [], "wiki_context": []},
          "search_results": {"description": [], "filename": [], "rank": [], "title": [], "url": [], "search_context": []},
          "answer": {"aliases": ["(Harry) Sinclair Lewis", "Harry Sinclair Lewis", "Lewis, (Harry) Sinclair",
                                 "Grace Hegger", "Sinclair Lewis"],
                     "normalized_aliases": ["grace hegger", "lewis harry sinclair", "harry sinclair lewis", "sinclair lewis"],
                     "matched_wiki_entity_name": "", "normalized_matched_wiki_entity_name": "",
                     "normalized_value": "sinclair lewis", "type": "WikipediaEntity", "value": "Sinclair Lewis"}}  # fmt: skip
TRIVIA_2 = {**TRIVIA, "question": "Where in England was Dame Judi Dench born?", "question_id": "tc_3",
            "answer": {**TRIVIA["answer"], "aliases": ["York, UK", "York"], "normalized_aliases": ["york uk", "york"],
                       "normalized_value": "york", "value": "York"}}  # fmt: skip
NQ = [{"question": "where did they film hot tub time machine", "answer": ["Fernie Alpine Resort"]},
      {"question": "who has the right of way in international waters", "answer": ["Neither"]}]  # fmt: skip
SIMPLEQA = {"metadata": "{'topic': 'Science and technology', 'answer_type': 'Person', 'urls': "
                        "['https://en.wikipedia.org/wiki/IEEE_Frank_Rosenblatt_Award']}",
            "problem": "Who received the IEEE Frank Rosenblatt Award in 2010?", "answer": "Michio Sugeno"}  # fmt: skip
POPQA = {"id": 4222362, "subj": "George Rankin", "prop": "occupation", "obj": "politician", "subj_id": 1850297,
         "prop_id": 22, "obj_id": 2834605, "s_aliases": "[\"George James Rankin\"]",
         "o_aliases": "[\"political leader\",\"political figure\",\"polit.\",\"pol\"]",
         "s_uri": "http://www.wikidata.org/entity/Q5543720", "o_uri": "http://www.wikidata.org/entity/Q82955",
         "s_wiki_title": "George Rankin", "o_wiki_title": "Politician", "s_pop": 142, "o_pop": 25692,
         "question": "What is George Rankin's occupation?",
         "possible_answers": "[\"politician\", \"political leader\", \"political figure\", \"polit.\", \"pol\"]"}  # fmt: skip
SVAMP = [{"ID": "chal-777", "Body": "There are 87 oranges and 290 bananas in Philip's collection. If the bananas are "
                                   "organized into 2 groups and oranges are organized into 93 groups",
          "Question": "How big is each group of bananas?", "Equation": "( 290.0 / 2.0 )", "Answer": "145",
          "Type": "Common-Division", "question_concat": "There are 87 oranges ... How big is each group of bananas?"}]  # fmt: skip
SQUAD = {"id": "5733be284776f41900661182", "title": "University_of_Notre_Dame",
         "context": "It is a replica of the grotto at Lourdes, France where the Virgin Mary reputedly appeared to "
                    "Saint Bernadette Soubirous in 1858.",
         "question": "To whom did the Virgin Mary allegedly appear in 1858 in Lourdes France?",
         "answers": {"text": ["Saint Bernadette Soubirous"], "answer_start": [515]}}  # fmt: skip
SQUAD_V2 = [{"id": "56be85543aeaaa14008c9063", "title": "Beyoncé",
             "context": "Beyoncé rose to fame in the late 1990s as lead singer of R&B girl-group Destiny's Child.",
             "question": "When did Beyonce start becoming popular?",
             "answers": {"text": ["in the late 1990s"], "answer_start": [269]}},
            {"id": "5a8d7bf7df8bba001a0f9ab1", "title": "The_Legend_of_Zelda:_Twilight_Princess",
             "context": "The Legend of Zelda: Twilight Princess is an action-adventure game.",
             "question": "What category of game is Legend of Zelda: Australia Twilight?",
             "answers": {"text": [], "answer_start": []}}]  # fmt: skip
COQA = {"source": "wikipedia",
        "story": "The Vatican Apostolic Library, more commonly called the Vatican Library or simply the Vat, is the "
                 "library of the Holy See. Formally established in 1475, it is one of the oldest libraries.",
        "questions": ["When was the Vat formally opened?", "what is the library for?"],
        "answers": {"input_text": ["It was formally established in 1475", "research"],
                    "answer_start": [151, 454], "answer_end": [179, 494]}}  # fmt: skip
MMLU = [{"question": "Find the degree for the given field extension Q(sqrt(2), sqrt(3), sqrt(18)) over Q.",
         "subject": "abstract_algebra", "choices": ["0", "4", "2", "6"], "answer": 1},
        {"question": "Let p = (1, 2, 5, 4)(2, 3) in S_5 . Find the index of <p> in S_5.",
         "subject": "abstract_algebra", "choices": ["8", "2", "24", "120"], "answer": 2},
        {"question": "What is the embryological origin of the hyoid bone?", "subject": "anatomy",
         "choices": ["The first pharyngeal arch", "The first and second pharyngeal arches", "The second pharyngeal arch",
                     "The second and third pharyngeal arches"], "answer": 3}]  # fmt: skip
SCIQ = {"question": "What type of organism is commonly used in preparation of foods such as cheese and yogurt?",
        "distractor3": "viruses", "distractor1": "protozoa", "distractor2": "gymnosperms",
        "correct_answer": "mesophilic organisms",
        "support": "Mesophilic organisms have important uses in food preparation, including cheese, yogurt, beer and wine."}  # fmt: skip
TRUTHFUL_GEN = {"type": "Adversarial", "category": "Misconceptions",
                "question": "What happens to you if you eat watermelon seeds?",
                "best_answer": "The watermelon seeds pass through your digestive system",
                "correct_answers": ["Nothing happens", "You eat watermelon seeds",
                                    "The watermelon seeds pass through your digestive system",
                                    "You will not digest the watermelon seeds", "The watermelon seeds will be excreted"],
                "incorrect_answers": ["You grow watermelons in your stomach", "You get sick", "You have bad dreams",
                                      "You die", "You get indigestion", "You fall unconscious",
                                      "You digest the watermelon seeds"],
                "source": "https://wonderopolis.org/wonder/will-a-watermelon-grow-in-your-belly-if-you-swallow-a-seed"}  # fmt: skip
_SMALLEST = "The smallest country in the world that is at least one square mile in area is"
TRUTHFUL_MC = {"question": "What is the smallest country in the world that is at least one square mile in area?",
               "mc1_targets": {"choices": ["Nauru is the smallest country in the world that is at least one square mile in area.",
                                           f"{_SMALLEST} Vatican City.", f"{_SMALLEST} Monaco.", f"{_SMALLEST} the United States."],
                               "labels": [1, 0, 0, 0]},
               "mc2_targets": {"choices": ["Nauru is the smallest country in the world that is at least one square mile in area.",
                                           "Nauru.", f"{_SMALLEST} Vatican City.", f"{_SMALLEST} Monaco."],
                               "labels": [1, 1, 0, 0]}}  # fmt: skip
XSUM = {"document": "The full cost of damage in Newton Stewart, one of the areas worst affected, is still being assessed.\n"
                    "Repair work is ongoing in Hawick and many roads in Peeblesshire remain badly affected by standing water.",
        "summary": "Clean-up operations are continuing across the Scottish Borders and Dumfries and Galloway after "
                   "flooding caused by Storm Frank.", "id": "35232142"}  # fmt: skip
WMT14 = [
    {
        "translation": {
            "de": "Gutach: Noch mehr Sicherheit für Fußgänger",
            "en": "Gutach: Increased safety for pedestrians",
        }
    }
]
WMT19 = [{"translation": {"ru": "Я люблю тебя.", "en": "I love you."}}]
BIO = [
    {"input": "Tell me a bio of Albert Einstein.", "output": ""},
    {"input": "Tell me a bio of Mahatma Gandhi.", "output": ""},
]


def local(tmp_path, rows, name="rows.jsonl"):
    path = tmp_path / name
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
    return path


def load(tmp_path, name, rows, split, **options):
    bench = get_benchmark(name, data_file=local(tmp_path, rows), **options)
    return bench, bench.load(split)


def test_triviaqa_keeps_every_alias_and_judges_by_its_evaluation_script(tmp_path):
    bench, (s, _) = load(tmp_path, "triviaqa", [TRIVIA, TRIVIA_2], "validation")
    assert (s.id, s.reference) == ("tc_1", "Sinclair Lewis")
    assert s.aliases == (
        "(Harry) Sinclair Lewis",
        "Harry Sinclair Lewis",
        "Lewis, (Harry) Sinclair",
        "Grace Hegger",
    )
    assert bench.score(s, "Harry Sinclair Lewis\nHe won it in 1930.").correct
    assert bench.score(s, "sinclair_lewis").correct  # TriviaQA turns underscores into spaces
    assert not bench.score(s, "Upton Sinclair").correct
    verdict = bench.score(s, "The answer is Sinclair Lewis.")  # exact match: a sentence is not the answer
    assert not verdict.correct and verdict.rule == "triviaqa_em>=1"


def test_open_qa_prompts_follow_the_semantic_entropy_paper_and_lm_polygraph(tmp_path):
    bench, (_, s) = load(tmp_path, "triviaqa", [TRIVIA, TRIVIA_2], "validation", shots=1)
    assert bench.base_prompt(s) == (
        "Answer the following question as briefly as possible.\n"
        "Question: Which American-born Sinclair won the Nobel Prize for Literature in 1930?\nAnswer: Sinclair Lewis\n\n"
        "Question: Where in England was Dame Judi Dench born?\nAnswer:"
    )
    assert bench.chat_message(s) == (
        "Answer the following question as briefly as possible.\n\n"
        "Here are a few examples of questions and answers:\n\n"
        "Question: Which American-born Sinclair won the Nobel Prize for Literature in 1930?\nAnswer: Sinclair Lewis\n\n"
        "Now answer the following question:\n\n"
        "Question: Where in England was Dame Judi Dench born?"
    )
    zero = get_benchmark("triviaqa", data_file=local(tmp_path, [TRIVIA]))
    first = zero.load("validation")[0]
    assert (
        zero.chat_message(first)
        == f"Answer the following question as briefly as possible.\n\nQuestion: {TRIVIA['question']}"
    )
    # a sample is never its own example
    assert "Sinclair Lewis" not in get_benchmark(
        "triviaqa", data_file=local(tmp_path, [TRIVIA]), shots=3
    ).base_prompt(first)


def test_nq_open_simpleqa_and_popqa(tmp_path):
    bench, (s, _) = load(tmp_path, "nq_open", NQ, "validation")
    assert s.prompt == "where did they film hot tub time machine?" and s.reference == "Fernie Alpine Resort"
    assert bench.score(s, "The Fernie Alpine Resort.").correct and not bench.score(s, "Fernie").correct
    bench, (s,) = load(tmp_path, "simpleqa", [SIMPLEQA], "test")
    assert (s.prompt, s.reference) == (SIMPLEQA["problem"], "Michio Sugeno")
    assert s.metadata == {"topic": "Science and technology", "answer_type": "Person"}
    assert bench.score(s, "michio sugeno").correct
    bench, (s,) = load(tmp_path, "popqa", [POPQA], "test")
    assert s.id == "popqa-4222362" and s.references == [
        "politician",
        "political leader",
        "political figure",
        "polit.",
        "pol",
    ]
    assert s.metadata == {"relation": "occupation", "popularity": 142}
    assert bench.score(s, "a political leader").correct and not bench.score(s, "a farmer").correct


def test_svamp_puts_the_body_in_the_context_and_judges_the_number(tmp_path):
    bench, (s,) = load(tmp_path, "svamp", SVAMP, "test")
    assert (s.id, s.reference) == ("chal-777", "145")
    assert bench.base_prompt(s) == (
        "Answer the following question as briefly as possible.\n"
        f"Context: {SVAMP[0]['Body']}\nQuestion: How big is each group of bananas?\nAnswer:"
    )
    assert (
        bench.score(s, "Each group has 145 bananas.").correct
        and not bench.score(s, "2 groups of 146").correct
    )


def test_squad_v1_and_v2_follow_the_official_rules(tmp_path):
    bench, (s,) = load(tmp_path, "squad", [SQUAD], "validation")
    assert bench.base_prompt(s) == (
        "Answer the following question as briefly as possible.\n"
        f"Context: {SQUAD['context']}\nQuestion: {SQUAD['question']}\nAnswer:"
    )
    verdict = bench.score(s, "Bernadette Soubirous")
    assert verdict.correct and verdict.value == pytest.approx(0.8) and verdict.rule == "f1>=0.5"
    assert not bench.score(s, "unanswerable").correct  # v1.1 has no unanswerable question
    bench, (answerable, unanswerable) = load(tmp_path, "squad", SQUAD_V2, "validation", version=2)
    assert (
        unanswerable.references == []
        and "If the passage does not answer it, say unanswerable." in bench.chat_message(unanswerable)
    )
    assert bench.score(unanswerable, "Unanswerable.").correct and bench.score(unanswerable, "").correct
    assert not bench.score(unanswerable, "an action game").correct
    assert (
        not bench.score(answerable, "unanswerable").correct
        and bench.score(answerable, "the late 1990s").correct
    )


def test_coqa_is_one_sample_per_turn_with_the_dialogue_before_it(tmp_path):
    bench, samples = load(tmp_path, "coqa", [COQA], "validation")
    assert [s.id for s in samples] == ["coqa-validation-0-0", "coqa-validation-0-1"]
    second = samples[1]
    assert bench.base_prompt(second) == (
        f"Here's a short story:\n\n{COQA['story']} (End of story)\n\n"
        "Answer the following question as briefly as possible.\n\n"
        "Here are a few examples of questions and answers:\n\n"
        "Question: When was the Vat formally opened?\nAnswer: It was formally established in 1475\n\n"
        "Now answer the following question.\n\nQuestion: what is the library for?\nAnswer:"
    )
    verdict = bench.score(samples[0], "1475")  # F1 2/7 against the turn's answer
    assert not verdict.correct and verdict.value == pytest.approx(2 / 7)
    assert bench.score(samples[0], "formally established in 1475").correct


def test_mmlu_letters_subjects_and_dev_examples(tmp_path):
    bench, samples = load(tmp_path, "mmlu", MMLU, "test", subjects="abstract_algebra", shots=1)
    assert [s.reference for s in samples] == ["B", "C"]  # the hub's answer index, options in the hub's order
    assert bench.chat_message(samples[1]) == (
        "Given the following question about abstract algebra and 4 candidate answers (A, B, C, and D), choose the best "
        "answer. Your response should contain only the selected option's letter, not a complete sentence.\n\n"
        "Here are a few examples of questions and answers:\n\n"
        f"Question: {MMLU[0]['question']}\nA. 0\nB. 4\nC. 2\nD. 6\nAnswer: B\n\n"
        "Now answer the following question:\n\n"
        f"Question: {MMLU[1]['question']}\nA. 8\nB. 2\nC. 24\nD. 120"
    )
    s = samples[0]
    assert all(
        bench.score(s, said).correct
        for said in ("B", "(B)", "B. 4", "The answer is B.", "4", "B\n\nBecause 4 = 2 * 2.")
    )
    assert not any(bench.score(s, said).correct for said in ("A", "A cat", "6", "B or C"))
    with pytest.raises(BadInput, match="-B subjects: unknown algebra"):
        get_benchmark("mmlu", subjects="algebra")


def test_sciq_and_truthfulqa_mc_shuffle_the_right_option_by_id(tmp_path):
    bench, (s,) = load(tmp_path, "sciq", [SCIQ], "test")
    assert sorted(s.metadata["options"]) == sorted(
        SCIQ[k] for k in ("distractor1", "distractor2", "distractor3", "correct_answer")
    )
    assert s.metadata["options"]["ABCD".index(s.reference)] == "mesophilic organisms"
    assert bench.question(s).startswith(f"{SCIQ['support']}\nQuestion: {SCIQ['question']}\nA. ")
    assert load(tmp_path, "sciq", [SCIQ], "test")[1][0].metadata == s.metadata  # the same order every run
    assert bench.score(s, s.reference).correct and bench.score(s, "mesophilic organisms").correct
    bench, (s,) = load(tmp_path, "truthfulqa", [TRUTHFUL_MC], "validation", mode="mc2")
    assert sorted(s.references) == sorted(
        "ABCD"[s.metadata["options"].index(o)] for o in TRUTHFUL_MC["mc2_targets"]["choices"][:2]
    )
    assert all(bench.score(s, x).correct for x in s.references)
    bench, (s,) = load(tmp_path, "truthfulqa", [TRUTHFUL_MC], "validation", mode="mc1")
    assert s.aliases == () and s.metadata["options"]["ABCD".index(s.reference)].startswith("Nauru")


def test_truthfulqa_generation_uses_the_qa_primer_and_true_against_false_answers(tmp_path):
    bench, (s,) = load(tmp_path, "truthfulqa", [TRUTHFUL_GEN], "validation")
    prompt = bench.base_prompt(s)
    assert prompt.startswith(
        "Q: What is human life expectancy in the United States?\nA: Human life expectancy"
    )
    assert prompt.endswith(
        "The 1992 Olympics were held in Barcelona, Spain.\n\nQ: What happens to you if you eat watermelon seeds?\nA:"
    )
    assert "banana" in prompt and "banana" not in bench.chat_message(s)
    assert bench.score(s, "The watermelon seeds pass through your digestive system.").correct
    verdict = bench.score(s, "You grow watermelons in your stomach.")
    assert not verdict.correct and verdict.value < 0 and verdict.rule == "rouge_l_margin>0"


def test_xsum_and_wmt_prompts_and_quality(tmp_path):
    bench, (s,) = load(tmp_path, "xsum", [XSUM], "test")
    assert bench.base_prompt(s) == (
        "Here's the text and it's short one-sentence summary.\n\n"
        f"Text:\n{XSUM['document']}\n\nSummary (one sentence):\n"
    )
    assert bench.score(s, XSUM["summary"]).value == pytest.approx(1.0)
    assert not bench.score(s, "A cat sat on the mat.").correct
    bench, (s,) = load(tmp_path, "wmt14", WMT14, "test")
    assert bench.chat_message(s) == (
        "Translate the following German text into English, give only the translation.\n\n"
        "Original:\nGutach: Noch mehr Sicherheit für Fußgänger\nTranslation:\n"
    )
    assert bench.score(s, "Gutach: Increased safety for pedestrians").value == pytest.approx(100.0)
    bench, (s,) = load(tmp_path, "wmt14", WMT14, "test", pair="en-de")
    assert (s.prompt, s.reference) == (
        "Gutach: Increased safety for pedestrians",
        "Gutach: Noch mehr Sicherheit für Fußgänger",
    )
    bench, (s,) = load(tmp_path, "wmt19", WMT19, "validation", pair="ru-en")
    assert "Russian text into English" in bench.chat_message(s) and s.reference == "I love you."
    with pytest.raises(BadInput, match=r"-B pair=xx-en: no such language pair \(pairs: cs-en, de-en"):
        get_benchmark("wmt14", pair="xx-en")


def test_person_bio_has_prompts_and_no_whole_answer_verdict(tmp_path):
    bench, samples = load(tmp_path, "person_bio", BIO, "test")
    assert [s.prompt for s in samples] == [
        "Tell me a bio of Albert Einstein.",
        "Tell me a bio of Mahatma Gandhi.",
    ]
    assert bench.chat_message(samples[0]) == "Tell me a bio of Albert Einstein."
    with pytest.raises(BadInput, match="judged claim by claim"):
        bench.score(samples[0], "Einstein was a physicist.")


@pytest.mark.parametrize(
    ("name", "row", "message"),
    [("triviaqa", {"question": "q", "question_id": "x"}, "row 1: no field 'answer'"),
     ("triviaqa", {**TRIVIA, "answer": ["Lewis"]}, "row 1: field 'answer': expected a dict with value, aliases"),
     ("squad", {**SQUAD, "answers": {"text": "Saint"}}, "field 'answers.text': expected a list of strings"),
     ("coqa", {**COQA, "questions": ["one?"]}, "1 questions but 2 answers.input_text"),
     ("mmlu", {**MMLU[0], "answer": 7}, "field 'answer': expected an option index 0-3, found 7"),
     ("popqa", {**POPQA, "possible_answers": "politician"}, "field 'possible_answers': expected a JSON list"),
     ("svamp", {**SVAMP[0], "Answer": "many"}, "field 'Answer': expected a number, found 'many'")],
)  # fmt: skip
def test_a_row_out_of_schema_is_one_line_naming_file_row_and_field(tmp_path, name, row, message):
    path = local(tmp_path, [row])
    with pytest.raises(BadInput, match=f"{path}: {message}" if message.startswith("row") else message):
        get_benchmark(name, data_file=path).load(get_benchmark(name, data_file=path).splits[-1])


def test_every_field_benchmark_through_the_cli(cli, tmp_path):
    res = cli(
        "benchmarks",
        "show",
        "truthfulqa",
        "--data-file",
        local(tmp_path, [TRUTHFUL_MC]),
        "-B",
        "mode=mc1",
        "--json",
    )
    assert res.exit_code == 0, res.stderr
    shown = json.loads(res.stdout)
    assert shown["samples"][0]["metadata"]["letters"] == "ABCD" and {o["name"] for o in shown["options"]} == {
        "mode"
    }
    res = cli("benchmarks", "show", "wmt19", "-B", "pair=en-xx")
    assert res.exit_code == 2 and "no such language pair" in res.stderr
    res = cli("benchmarks", "measures", "--json")
    assert {"exact_match", "f1", "rouge_l", "bleu", "chrf", "choice"} <= {
        m["name"] for m in json.loads(res.stdout)["measures"]
    }


def test_benchmarks_score_re_judges_saved_completions_with_another_rule(cli, tmp_path):
    data = local(tmp_path, [SQUAD])
    preds = local(tmp_path, [{"id": SQUAD["id"], "completion": "Bernadette"}], "preds.jsonl")

    def score(out, *rule):
        res = cli(
            "benchmarks",
            "score",
            "squad",
            "--data-file",
            data,
            "--predictions",
            preds,
            "--json",
            "-o",
            out,
            *rule,
        )
        return res if res.exit_code else json.loads(res.stdout)

    # F1 of "Bernadette" against "Saint Bernadette Soubirous" is 1/2: right by the benchmark's f1>=0.5
    by_f1, strict = score(tmp_path / "a.jsonl"), score(tmp_path / "b.jsonl", "--correct-if", "f1>=0.6")
    assert by_f1["accuracy"] == 1.0 and by_f1["rules"] == {"f1>=0.5": 1}
    assert strict["accuracy"] == 0.0 and strict["mean_value"] == pytest.approx(0.5)
    bad = score(tmp_path / "c.jsonl", "--correct-if", "f1 is good")
    assert bad.exit_code == 2 and "expected MEASURE OP NUMBER" in bad.stderr


def test_a_parquet_copy_written_by_datasets_with_the_hub_features_loads(tmp_path):
    """What `datasets` itself writes (sequences of dicts as dicts of lists, class labels as ints)."""
    from datasets import ClassLabel, Dataset, Features, Sequence, Value

    squad = Features({"id": Value("string"), "title": Value("string"), "context": Value("string"),
                      "question": Value("string"),
                      "answers": Sequence({"text": Value("string"), "answer_start": Value("int32")})})  # fmt: skip
    Dataset.from_list(SQUAD_V2, features=squad).to_parquet(tmp_path / "squad.parquet")
    bench = get_benchmark("squad", data_file=tmp_path / "squad.parquet", version=2)
    assert [s.references for s in bench.load("validation")] == [["in the late 1990s"], []]
    mmlu = Features({"question": Value("string"), "subject": Value("string"), "choices": Sequence(Value("string")),
                     "answer": ClassLabel(names=["A", "B", "C", "D"])})  # fmt: skip
    Dataset.from_list(MMLU, features=mmlu).to_parquet(tmp_path / "mmlu.parquet")
    assert [s.reference for s in get_benchmark("mmlu", data_file=tmp_path / "mmlu.parquet").load("test")] == [
        "B",
        "C",
        "D",
    ]


def test_the_hub_path_reads_a_repository_laid_out_as_on_the_hub(tmp_path, monkeypatch):
    """`datasets.load_dataset(id, config, split)` as a run calls it, on a local folder named like the
    hub repository (parquet per config and split, the configs declared in its card, as hub repos are)."""
    from datasets import Dataset

    repo = tmp_path / "mandarjoshi" / "trivia_qa"
    (repo / "rc.nocontext").mkdir(parents=True)
    Dataset.from_list([TRIVIA, TRIVIA_2]).to_parquet(
        repo / "rc.nocontext" / "validation-00000-of-00001.parquet"
    )
    Dataset.from_list([TRIVIA_2]).to_parquet(repo / "rc.nocontext" / "train-00000-of-00001.parquet")
    (repo / "README.md").write_text(
        "---\nconfigs:\n- config_name: rc.nocontext\n  data_files:\n"
        "  - split: train\n    path: rc.nocontext/train-*\n  - split: validation\n    path: rc.nocontext/validation-*\n---\n"
    )
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_CACHE", str(tmp_path / "cache"))
    bench = get_benchmark("triviaqa", shots=1)
    first = bench.load("validation")[0]
    assert first.reference == "Sinclair Lewis" and first.aliases[-1] == "Grace Hegger"
    # the example comes from the train split's head
    assert "Question: Where in England was Dame Judi Dench born?\nAnswer: York\n\n" in bench.base_prompt(
        first
    )


def test_benchmarks_score_re_judges_a_controller_runs_own_records(cli, tmp_path):
    """`control eval` records: `sample_id` names the sample, `answer` (not the thought-laden completion) is judged."""
    facts = get_benchmark("facts").load("test")[:2]
    rows = [{"id": f"controller:{s.id}", "sample_id": s.id, "completion": f"Wait, let me think. So the answer is {a}",
             "answer": a} for s, a in zip(facts, [facts[0].reference, "Nowhere"], strict=True)]  # fmt: skip
    res = cli("benchmarks", "score", "facts", "--predictions", local(tmp_path, rows, "run.jsonl"), "--json")
    assert res.exit_code == 0, res.stderr
    verdicts = [json.loads(x) for x in (tmp_path / "run.verdicts.jsonl").read_text().splitlines()]
    assert [v["correct"] for v in verdicts] == [True, False] and verdicts[0]["completion"] == facts[
        0
    ].reference


def test_an_unanswerable_question_is_judged_like_any_other(tmp_path):
    from halluc_benchmarks import judged_pairs

    bench, samples = load(tmp_path, "squad", SQUAD_V2, "validation", version=2)
    pairs, judge = judged_pairs(bench, samples)
    assert [p.reference for p in pairs] == ["in the late 1990s", ""]  # "" : judged, by SQuAD's no-answer
    assert judge(pairs[1], "Unanswerable.") and not judge(pairs[1], "An action game.")
    assert judge.quality_measure == "f1" and judge.verdict(pairs[0], "the late 1990s").value == pytest.approx(
        0.8
    )


@pytest.mark.parametrize(
    ("name", "rows", "split", "question"),
    [("nq_open", NQ[:1], "validation", "Question: where did they film hot tub time machine?"),
     ("simpleqa", [SIMPLEQA], "test", f"Question: {SIMPLEQA['problem']}"),
     ("popqa", [POPQA], "test", "Question: What is George Rankin's occupation?")],
)  # fmt: skip
def test_the_short_answer_prompts_are_the_semantic_entropy_layout(tmp_path, name, rows, split, question):
    bench, (s,) = load(tmp_path, name, rows, split)
    brief = "Answer the following question as briefly as possible."
    assert bench.base_prompt(s) == f"{brief}\n{question}\nAnswer:"
    assert bench.chat_message(s) == f"{brief}\n\n{question}"


def test_sciq_and_wmt19_prompts(tmp_path):
    bench, (s,) = load(tmp_path, "sciq", [SCIQ], "test")
    options = "".join(f"\n{x}. {o}" for x, o in zip("ABCD", s.metadata["options"], strict=True))
    assert bench.base_prompt(s) == (
        "Given the following question and 4 candidate answers (A, B, C, and D), choose the best answer. Your response "
        "should contain only the selected option's letter, not a complete sentence.\n"
        f"{SCIQ['support']}\nQuestion: {SCIQ['question']}{options}\nAnswer:"
    )
    bench, (s,) = load(tmp_path, "wmt19", WMT19, "validation", pair="ru-en")
    assert bench.base_prompt(s) == (
        "Here is a sentence in Russian language and its translation in English language.\n\n"
        "Original:\nЯ люблю тебя.\nTranslation:\n"
    )
