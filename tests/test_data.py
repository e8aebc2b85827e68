import json

import pytest

from ucli.data import read_prompt_pairs, read_records
from ucli.errors import BadInput


def write(path, text):
    path.write_text(text, encoding="utf-8")
    return path


def test_jsonl_pairs_accept_seed_field_names_and_keep_extra_fields_as_metadata(tmp_path):
    f = write(
        tmp_path / "q.jsonl",
        '{"prompt": "Capital of France?", "completion": "Paris", "category": "geo"}\n'
        "\n"
        '{"question": "Year of Moon landing?", "answer": 1969, "aliases": "nineteen sixty-nine"}\n'
        '{"id": 7, "input": "Symbol for gold?", "target": "Au"}\n',
    )
    pairs = read_prompt_pairs(f)
    assert [p.prompt for p in pairs] == ["Capital of France?", "Year of Moon landing?", "Symbol for gold?"]
    assert [p.reference for p in pairs] == ["Paris", "1969", "Au"]
    assert pairs[0].metadata == {"category": "geo"}
    assert pairs[1].aliases == ["nineteen sixty-nine"]
    assert pairs[2].id == "7"


def test_ids_are_stable_under_reordering_and_repeats_are_numbered(tmp_path):
    a = read_prompt_pairs(write(tmp_path / "a.tsv", "p1\tr1\np2\tr2\np1\tr1\n"))
    b = read_prompt_pairs(write(tmp_path / "b.tsv", "p2\tr2\np1\tr1\n"))
    assert {p.prompt: p.id for p in b} == {p.prompt: p.id for p in a[:2]}
    assert a[2].id == a[0].id + "#2"


def test_tsv_header_row_is_skipped_and_extra_tabs_stay_in_reference(tmp_path):
    pairs = read_prompt_pairs(write(tmp_path / "q.tsv", "prompt\treference\nWhat?\tthis\tand that\n"))
    assert len(pairs) == 1 and pairs[0].reference == "this\tand that"


def test_json_list_and_wrapped_list(tmp_path):
    rows = [{"prompt": "a", "reference": "b"}, {"prompt": "c", "reference": "d"}]
    assert len(read_prompt_pairs(write(tmp_path / "l.json", json.dumps(rows)))) == 2
    assert len(read_prompt_pairs(write(tmp_path / "w.json", json.dumps({"data": rows})))) == 2


def test_csv_records(tmp_path):
    recs = read_records(write(tmp_path / "r.csv", "id,acc\n1,1\n2,0\n"))
    assert [r.data for r in recs] == [{"id": "1", "acc": "1"}, {"id": "2", "acc": "0"}]
    assert [r.line for r in recs] == [2, 3]


@pytest.mark.parametrize(
    ("name", "text", "message"),
    [
        (
            "bad.jsonl",
            '{"prompt": "a", "reference": "b"}\n{"prompt": "c", "ref\n',
            "bad.jsonl:2: invalid JSON",
        ),
        (
            "arr.jsonl",
            '{"prompt": "a", "reference": "b"}\n[1, 2]\n',
            "arr.jsonl:2: expected a JSON object, found list",
        ),
        ("notab.tsv", "a\tb\nno tab here\n", "notab.tsv:2: expected 'prompt<TAB>reference', found no tab"),
        ("empty.jsonl", "\n  \n", "empty.jsonl: file is empty"),
        ("noref.jsonl", '{"prompt": "a"}\n', "noref.jsonl:1: field 'reference' is missing"),
        ("noprompt.jsonl", '{"reference": "a"}\n', "noprompt.jsonl:1: field 'prompt' is missing"),
        (
            "type.jsonl",
            '{"question": ["a"], "reference": "b"}\n',
            "type.jsonl:1: field 'question': input should be a valid string",
        ),
        (
            "dup.jsonl",
            '{"id": 1, "prompt": "a", "reference": "b"}\n{"id": "1", "prompt": "c", "reference": "d"}\n',
            "dup.jsonl:2: field 'id': duplicate id '1' (first at",
        ),
        ("cols.csv", "prompt,reference\na,b,c\n", "cols.csv:2: expected 2 columns"),
        ("header.csv", "prompt,reference\n", "header.csv: no records"),
        ("q.txt", "hello\n", "unknown data format '.txt'"),
    ],
)
def test_bad_input_names_file_line_and_field(tmp_path, name, text, message):
    f = write(tmp_path / name, text)
    with pytest.raises(BadInput) as info:
        read_prompt_pairs(f)
    assert message in str(info.value)
    assert str(info.value).startswith(str(f))
    assert info.value.exit_code == 2


def test_missing_and_non_utf8_files(tmp_path):
    with pytest.raises(BadInput, match="no such file"):
        read_records(tmp_path / "nope.jsonl")
    (tmp_path / "bin.jsonl").write_bytes(b'{"a": "\xff\xfe"}\n')
    with pytest.raises(BadInput, match="not UTF-8"):
        read_records(tmp_path / "bin.jsonl")
