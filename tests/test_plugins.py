"""Third-party plugins go through the same entry points as first-party ones; a broken one costs one line."""

import json
import os
import subprocess
import sys
import textwrap

import pytest

GOOD = '''
import typer

app = typer.Typer(help="A third-party group.")


@app.command()
def hello(name: str = "world"):
    """Say hello."""
    print(f"hello {name}")


@app.command()
def boom():
    """Fail unexpectedly."""
    raise RuntimeError("kaboom")


class EchoBackend:
    name = "echo"


class TinyBench:
    name = "tiny"
'''


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    root = tmp_path_factory.mktemp("site")
    (root / "halluc_ext_good.py").write_text(GOOD)
    (root / "halluc_ext_bad.py").write_text("raise ImportError('missing dependency foo')\n")
    info = root / "halluc_ext-1.2.3.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: halluc-ext\nVersion: 1.2.3\n")
    (info / "entry_points.txt").write_text(
        textwrap.dedent(
            """
            [halluc.commands]
            ext = halluc_ext_good:app
            broken = halluc_ext_bad:app
            [halluc.backends]
            echo = halluc_ext_good:EchoBackend
            [halluc.benchmarks]
            tiny = halluc_ext_good:TinyBench
            """
        )
    )
    return root


def run(site, *args, allow=None):
    env = {**os.environ, "PYTHONPATH": str(site)}
    env.pop("HALLUC_PLUGINS", None)
    if allow is not None:
        env["HALLUC_PLUGINS"] = allow
    return subprocess.run(
        [sys.executable, "-m", "ucli", *args], capture_output=True, text=True, env=env, timeout=120
    )


def test_third_party_group_mounts_and_a_broken_plugin_costs_one_warning(site):
    res = run(site, "ext", "hello", "--name", "you")
    assert res.returncode == 0 and res.stdout == "hello you\n"
    warnings = res.stderr.strip().splitlines()
    assert len(warnings) == 1
    assert (
        "plugin 'broken' (halluc-ext 1.2.3) failed to load: ImportError: missing dependency foo"
        in warnings[0]
    )


def test_plugins_json_lists_every_kind_with_provider_and_failures(site):
    res = run(site, "plugins", "--json")
    assert res.returncode == 0
    rows = {(r["kind"], r["name"]): r for r in json.loads(res.stdout)["plugins"]}
    assert (
        rows[("commands", "ext")]["distribution"] == "halluc-ext"
        and rows[("commands", "ext")]["version"] == "1.2.3"
    )
    assert rows[("commands", "broken")]["status"] == "failed"
    assert rows[("commands", "broken")]["error"] == "ImportError: missing dependency foo"
    assert rows[("backends", "echo")]["status"] == "ok" and rows[("benchmarks", "tiny")]["status"] == "ok"
    assert (
        rows[("commands", "demo")]["first_party"] and rows[("commands", "demo")]["distribution"] == "halluc"
    )


def test_allow_list_controls_third_party_plugins_only(site):
    none = json.loads(run(site, "plugins", "--json", allow="").stdout)["plugins"]
    status = {p["name"]: p["status"] for p in none}
    assert status["ext"] == status["broken"] == status["echo"] == "disabled" and status["demo"] == "ok"
    res = run(site, "ext", "hello", allow="")
    assert res.returncode == 2 and "No such command 'ext'" in res.stderr
    rows = json.loads(run(site, "plugins", "--json", allow="ext, tiny").stdout)["plugins"]
    third_party = {p["name"]: p["status"] for p in rows if not p["first_party"]}
    assert third_party == {"ext": "ok", "broken": "disabled", "echo": "disabled", "tiny": "ok"}
    assert all(p["status"] == "ok" for p in rows if p["first_party"])
    by_dist = {
        p["name"]: p["status"]
        for p in json.loads(run(site, "plugins", "--json", allow="halluc-ext").stdout)["plugins"]
    }
    assert by_dist["ext"] == by_dist["echo"] == "ok" and by_dist["broken"] == "failed"


def test_unexpected_errors_exit_1_with_one_line_and_debug_shows_the_traceback(site):
    res = run(site, "ext", "boom", allow="ext")
    assert res.returncode == 1
    assert res.stderr.strip() == "error: RuntimeError: kaboom (run with --debug for a traceback)"
    dbg = run(site, "--debug", "ext", "boom", allow="ext")
    assert dbg.returncode == 1 and "Traceback" in dbg.stderr and "kaboom" in dbg.stderr


def test_load_by_name_lists_what_is_available(site, monkeypatch):
    monkeypatch.syspath_prepend(str(site))
    from ucli import plugins
    from ucli.errors import BadInput

    plugins.discover.cache_clear()
    try:
        assert plugins.load("backends", "echo").name == "echo"
        with pytest.raises(BadInput, match=r"unknown backend 'nope' \(available: [^)]*\becho\b[^)]*\)"):
            plugins.load("backends", "nope")
    finally:
        plugins.discover.cache_clear()


def test_the_entry_point_index_is_rebuilt_when_anything_installed_changes(tmp_path, monkeypatch):
    from ucli import plugins

    monkeypatch.setenv("HALLUC_CACHE", str(tmp_path / "cache"))
    assert plugins._index() == plugins._scan()  # built from a real scan
    assert (tmp_path / "cache" / "entry_points.json").is_file()
    assert plugins._index() == plugins._scan()  # and served from the index

    site = tmp_path / "site"
    site.mkdir()
    (site / "halluc_idx.py").write_text("class One: pass\nclass Two: pass\n")
    info = site / "halluc_idx-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: halluc-idx\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[halluc.benchmarks]\nidx-one = halluc_idx:One\n")
    monkeypatch.syspath_prepend(str(site))  # a new distribution on sys.path
    names = {r["name"] for r in plugins._index()}
    assert "idx-one" in names and "idx-two" not in names

    import os

    ep_file = info / "entry_points.txt"
    ep_file.write_text("[halluc.benchmarks]\nidx-one = halluc_idx:One\nidx-two = halluc_idx:Two\n")
    stamp = os.stat(ep_file).st_mtime_ns + 1_000_000
    os.utime(ep_file, ns=(stamp, stamp))  # entry points edited in place
    assert {"idx-one", "idx-two"} <= {r["name"] for r in plugins._index()}
    assert plugins._load_target("halluc_idx:Two").__name__ == "Two"


def test_an_unusable_cache_folder_only_costs_speed(tmp_path, monkeypatch):
    from ucli import plugins

    blocker = tmp_path / "not-a-folder"
    blocker.write_text("x")
    monkeypatch.setenv("HALLUC_CACHE", str(blocker / "cache"))  # mkdir under a file fails
    assert plugins._index() == plugins._scan()
    res = run(tmp_path, "--help")  # the CLI itself still starts
    assert res.returncode == 0 and "plugins" in res.stdout
