import sys

import pytest


def test_lazy_exports_import_a_module_only_on_first_use(tmp_path, monkeypatch):
    pkg = tmp_path / "lazypkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text(
        "from ucli.lazy import lazy_exports\n__getattr__ = lazy_exports(__name__, {'VALUE': 'heavy'})\n"
    )
    (pkg / "heavy.py").write_text("VALUE = 42\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    import lazypkg

    assert "lazypkg.heavy" not in sys.modules
    assert lazypkg.VALUE == 42 and "lazypkg.heavy" in sys.modules
    with pytest.raises(AttributeError, match="has no attribute 'other'"):
        _ = lazypkg.other
