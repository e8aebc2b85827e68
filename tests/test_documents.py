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


def test_one_formatting_of_validation_errors():
    """Configs, options and records turn a pydantic error into one line, each in its own style (issue 18)."""
    from pydantic import BaseModel, ConfigDict, Field, ValidationError

    from ucli.errors import invalid

    class Model(BaseModel):
        model_config = ConfigDict(extra="forbid")
        name: str
        top_p: float = Field(1.0, le=1)
        api_key: int | None = None

    def error(**data):
        try:
            Model(**data)
        except ValidationError as exc:
            return exc
        raise AssertionError("no error")

    assert (
        str(invalid(error(name="a", top_p=2), "p.toml"))
        == "p.toml: top_p: Input should be less than or equal to 1 (got 2)"
    )
    assert str(invalid(error(name="a", api_key="sk-123"), "p.toml")).endswith("(got <redacted>)")
    assert str(invalid(error(name="a", color=1), "r.toml", model=Model)) == (
        "r.toml: unknown key 'color' (valid keys: name, top_p, api_key)"
    )
    # a misspelt key comes first (it also leaves its right name missing), with the key meant
    assert (
        str(invalid(error(nmae="a"), "r.toml", model=Model))
        == "r.toml: unknown key 'nmae'; did you mean 'name'?"
    )
    assert str(invalid(error(), "r.toml")) == "r.toml: name: Field required"  # no table dumped
    assert (
        str(invalid(error(name="a", top_p=2), style="option"))
        == "--top-p: Input should be less than or equal to 1 (got 2)"
    )
    assert str(invalid(error(top_p=1), "q.jsonl:3", style="field", names={"name": "question"})) == (
        "q.jsonl:3: field 'question': field required"
    )
