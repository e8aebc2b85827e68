"""LaTeX answer extraction and normalisation for MATH-style answers.

`last_boxed` reads the argument of the last `\\boxed{...}` / `\\fbox{...}` (nested braces kept).
`normalize_latex` removes what does not change an answer: spaces, `\\left`/`\\right`, `\\!`,
`$`, `^\\circ`/`^{\\circ}`, `\\%`, `\\text{...}` units after a number, a leading `x =`, `\\dfrac`/
`\\tfrac` (become `\\frac`), short forms `\\frac12` and `\\sqrt2` (braced), a leading `0` in `0.5`
(".5" becomes "0.5"), trailing zeros after a decimal point. `latex_equal` compares normalised
strings, then numeric values for plain numbers, `a/b` and `\\frac{a}{b}`.
"""

from __future__ import annotations

import re
from fractions import Fraction

UNIT_AFTER_NUMBER = re.compile(r"^(-?[\d.,]+)\s*\\(?:text|mbox|mathrm)\{[^{}]*\}$")
TEXT = re.compile(r"\\(?:text|mbox|mathrm)\{\s*([^{}]*?)\s*\}")


def last_boxed(text: str) -> str | None:
    start = max(text.rfind("\\boxed"), text.rfind("\\fbox"))
    if start < 0:
        return None
    brace = text.find("{", start)
    if brace < 0:
        rest = text[start:].split(None, 1)  # "\boxed 5"
        return rest[1].split()[0] if len(rest) > 1 else None
    depth = 0
    for i in range(brace, len(text)):
        if text[i] == "{":
            depth += 1
        elif text[i] == "}":
            depth -= 1
            if depth == 0:
                return text[brace + 1 : i]
    return None


def _brace_short_forms(s: str) -> str:
    s = re.sub(r"\\frac(\d)(\d)", r"\\frac{\1}{\2}", s)
    s = re.sub(r"\\frac\{([^{}]*)\}(\d)", r"\\frac{\1}{\2}", s)
    s = re.sub(r"\\frac(\d)\{", r"\\frac{\1}{", s)
    return re.sub(r"\\sqrt(\d+)", r"\\sqrt{\1}", s)


def normalize_latex(answer: str) -> str:
    s = answer.strip().strip("$").strip()
    if m := UNIT_AFTER_NUMBER.match(s):
        s = m.group(1)  # "3\text{ cm}" -> "3"
    s = TEXT.sub(r"\1", s)  # "\text{yes}" -> "yes"
    for old in ("\\left", "\\right", "\\!", "\\,", "\\;", "\\:", "\\displaystyle", "\\%", "%", "\\$", "$"):
        s = s.replace(old, "")
    s = re.sub(r"\^\{?\\circ\}?", "", s)
    s = s.replace("\\dfrac", "\\frac").replace("\\tfrac", "\\frac")
    s = re.sub(r"\s+", "", s)
    s = re.sub(r"^[a-zA-Z]=", "", s)  # "x=5" -> "5"
    s = _brace_short_forms(s)
    s = re.sub(r"(?<![\d])\.(\d)", r"0.\1", s)  # ".5" -> "0.5"
    s = re.sub(r"(\d)\.(\d*?)0+\b", lambda m: f"{m.group(1)}.{m.group(2)}" if m.group(2) else m.group(1), s)
    s = s.rstrip(".")
    return s.replace(",", "") if re.fullmatch(r"-?\d{1,3}(,\d{3})+(\.\d+)?", s) else s


def _value(s: str) -> Fraction | None:
    try:
        if m := re.fullmatch(r"(-?)\\frac\{(-?\d+)\}\{(-?\d+)\}", s):
            v = Fraction(int(m.group(2)), int(m.group(3)))
            return -v if m.group(1) else v
        if m := re.fullmatch(r"(-?\d+)/(-?\d+)", s):
            return Fraction(int(m.group(1)), int(m.group(2)))
        if re.fullmatch(r"-?\d+(\.\d+)?", s):
            return Fraction(s)
    except (ValueError, ZeroDivisionError):
        return None
    return None


def latex_equal(candidate: str, reference: str) -> bool:
    a, b = normalize_latex(candidate), normalize_latex(reference)
    if a == b:
        return True
    va, vb = _value(a), _value(b)
    return va is not None and va == vb
