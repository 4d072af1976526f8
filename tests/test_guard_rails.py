"""The layout guard rails of CI (issue 9): module and function sizes under src/."""

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _checker():
    spec = importlib.util.spec_from_file_location("check_size", ROOT / "scripts" / "check_size.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_src_respects_size_limits():
    check = _checker()
    found = [v for p in sorted((ROOT / "src").rglob("*.py")) for v in check.violations(p)]
    assert found == []


def test_checker_catches_long_modules_and_functions(tmp_path):
    check = _checker()
    body = "\n".join(f"    x{i} = {i}" for i in range(check.MAX_FUNCTION_LINES))
    long_fn = tmp_path / "long_fn.py"
    long_fn.write_text(f"@staticmethod\ndef f():\n{body}\n")
    assert [v for v in check.violations(long_fn) if "function f is" in v]
    ok_fn = tmp_path / "ok_fn.py"
    ok_fn.write_text("def f():\n" + "\n".join(body.splitlines()[:-1]) + "\n")
    assert check.violations(ok_fn) == []
    long_mod = tmp_path / "long_mod.py"
    long_mod.write_text("x = 1\n" * (check.MAX_MODULE_LINES + 1))
    assert [v for v in check.violations(long_mod) if "lines (max" in v]
    assert check.main([str(tmp_path)]) == 1
