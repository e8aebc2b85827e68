import json

import pytest

from ucli.errors import BadInput
from ucli.journal import Journal


def test_resume_skips_done_ids_and_drops_a_torn_last_line(tmp_path):
    path = tmp_path / "j.jsonl"
    with Journal(path, config={"model": "m", "temps": (0.0, 0.7)}) as j:
        j.append({"id": "a", "answer": "Paris"})
        j.append({"id": "b", "answer": "Rome"})
    with open(path, "a") as fh:
        fh.write('{"id": "c", "answ')  # the process died mid-record
    with Journal(path, config={"model": "m", "temps": [0.0, 0.7]}, resume=True) as j:
        assert j.done == {"a", "b"}
        j.append({"id": "c", "answer": "Madrid"})
    lines = path.read_text().splitlines()
    assert [json.loads(x).get("id") for x in lines[1:]] == ["a", "b", "c"]


def test_existing_journal_needs_resume_and_the_same_config(tmp_path):
    path = tmp_path / "j.jsonl"
    with Journal(path, config={"model": "m", "seed": 0}) as j:
        j.append({"id": "a"})
    with pytest.raises(BadInput, match="pass --resume"):
        Journal(path, config={"model": "m", "seed": 0})
    with pytest.raises(BadInput, match=r"different configuration \(changed: seed\)"):
        Journal(path, config={"model": "m", "seed": 1}, resume=True)


def test_corruption_in_the_middle_is_an_error_not_silently_skipped(tmp_path):
    path = tmp_path / "j.jsonl"
    with Journal(path) as j:
        j.append({"id": "a"})
        j.append({"id": "b"})
    lines = path.read_text().splitlines()
    lines[1] = "garbage"
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(BadInput, match=r"j.jsonl:2: corrupt journal record"):
        Journal(path, resume=True)


def test_duplicate_ids_are_refused_and_secrets_never_reach_the_file(tmp_path, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-secret-abcdefgh")
    path = tmp_path / "j.jsonl"
    with Journal(path, config={"api_key": "sk-secret-abcdefgh"}) as j:
        j.append({"id": "a", "error": "401 for key sk-secret-abcdefgh"})
        with pytest.raises(ValueError, match="already"):
            j.append({"id": "a"})
    assert "sk-secret-abcdefgh" not in path.read_text()


def test_one_preflight_for_journaled_outputs(tmp_path, capsys):
    """Where the journal lives and what --resume may do, for file and folder outputs (issue 18)."""
    from ucli.journal import preflight

    scores = tmp_path / "scores.jsonl"
    assert preflight(scores, False, folder=False) == tmp_path / "scores.jsonl.journal"
    scores.write_text("{}\n")
    with pytest.raises(BadInput, match="exists; pass --force to replace it, --resume to continue an interrupted run, or choose another --output"):  # fmt: skip
        preflight(scores, False, folder=False)
    assert preflight(scores, False, folder=False, force=True) == tmp_path / "scores.jsonl.journal"
    assert preflight(scores, True, folder=False) is None  # finished: no journal left
    assert "already complete" in capsys.readouterr().err
    run = tmp_path / "run"
    assert preflight(run, False, folder=True) == run / "journal.jsonl"
    with pytest.raises(BadInput, match="nothing to resume"):
        preflight(run, True, folder=True)
    run.mkdir()
    (run / "meta.json").write_text("{}")
    with pytest.raises(BadInput, match="not empty; pass --resume"):
        preflight(run, False, folder=True)
    assert preflight(run, True, folder=True, complete="meta.json") is None
    (run / "journal.jsonl").write_text("")
    assert preflight(run, True, folder=True, complete="meta.json") == run / "journal.jsonl"


def test_a_resumed_run_reruns_exactly_the_unfinished_fixed_batches(tmp_path):
    from types import SimpleNamespace

    items = [SimpleNamespace(id=f"q{i}") for i in range(7)]
    with Journal(tmp_path / "j.jsonl", config={}) as journal:
        assert [start for start, _ in journal.todo_batches(items, 3)] == [0, 3, 6]
        assert journal.append_new([{"id": "q0"}, {"id": "q1"}, {"id": "q2"}, {"id": "q3"}]) == 4
        # q3 is done but its batch (q3, q4, q5) is not: it runs again whole, and q3 is not journaled twice
        todo = journal.todo_batches(items, 3)
        assert [(start, [x.id for x in batch]) for start, batch in todo] == [
            (3, ["q3", "q4", "q5"]),
            (6, ["q6"]),
        ]
        assert journal.append_new([{"id": "q3"}, {"id": "q4"}, {"id": "q5"}]) == 2
        keyed = journal.todo_batches(items, 3, key=lambda x: f"arm:{x.id}")
        assert [start for start, _ in keyed] == [0, 3, 6]  # another key: nothing of it is done
