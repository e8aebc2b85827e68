"""Config documents read the same on every supported Python (issue 17, item 4)."""

import sys

import pytest

from ucli.documents import read_document, toml_module
from ucli.errors import BadInput

PILOT = 'seed = 3\n[[models]]\nname = "echo"\ntype = "openai"\n'


def test_toml_and_json_give_the_same_document(tmp_path):
    (tmp_path / "a.toml").write_text(PILOT)
    (tmp_path / "a.json").write_text('{"seed": 3, "models": [{"name": "echo", "type": "openai"}]}')
    assert read_document(tmp_path / "a.toml") == read_document(tmp_path / "a.json")


def test_python_310_reads_toml_through_the_tomli_backport(tmp_path, monkeypatch):
    import tomli

    from halluc_finetune.recipe import load_recipe

    monkeypatch.setitem(sys.modules, "tomllib", None)  # as on Python 3.10: `import tomllib` fails
    assert toml_module() is tomli
    (tmp_path / "pilot.toml").write_text(PILOT)
    assert read_document(tmp_path / "pilot.toml")["models"][0]["type"] == "openai"
    (tmp_path / "r.toml").write_text('[model]\nbase_model = "tiny"\n[data]\ndata_file = "d.jsonl"\n')
    assert load_recipe(tmp_path / "r.toml").base_model == "tiny"
    (tmp_path / "bad.toml").write_text("seed = \n")
    with pytest.raises(BadInput, match=r"bad.toml: invalid TOML \(.*line 1"):
        read_document(tmp_path / "bad.toml")


def test_broken_documents_are_one_line(tmp_path):
    with pytest.raises(BadInput, match=r"nope\.toml: recipe file not found"):
        read_document(tmp_path / "nope.toml", "recipe")
    (tmp_path / "b.json").write_text('{"a": 1,\n"b": }')
    with pytest.raises(BadInput, match=r"b.json:2: invalid JSON \(Expecting value at column 6\)"):
        read_document(tmp_path / "b.json")
    (tmp_path / "l.json").write_text("[1]")
    with pytest.raises(BadInput, match=r"l\.json: expected a JSON object"):
        read_document(tmp_path / "l.json")
