"""The embedded default data set must be right: structure, scoring, and independent references."""

import re
from collections import Counter

import pytest

from halluc_benchmarks import get_benchmark
from halluc_benchmarks.metrics import HEDGES, normalize, parse_number

FACTS = get_benchmark("facts")
ALL = FACTS.load("train") + FACTS.load("test")
CATEGORIES = {"capitals", "authors", "chemistry", "discoverers", "astronomy", "dates", "units", "geography"}


def by_category(name):
    return [s for s in ALL if s.metadata["category"] == name]


def test_size_categories_and_fixed_splits():
    assert len(ALL) >= 400 and len({s.id for s in ALL}) == len(ALL)
    assert {s.metadata["category"] for s in ALL} == CATEGORIES
    for split in ("train", "test"):
        counts = Counter(s.metadata["category"] for s in FACTS.load(split))
        assert set(counts) == CATEGORIES and min(counts.values()) >= 25
    assert len({s.prompt for s in ALL}) == len(ALL)


def test_references_are_well_formed():
    for s in ALL:
        refs = [normalize(r) for r in s.references]
        assert all(refs), s.id
        assert len(set(refs)) == len(refs), f"{s.id}: duplicate alias after normalisation"
        assert not any(r in HEDGES for r in refs), s.id
        if s.metadata["answer_type"] == "number":
            # the number rule reads only the reference, so a number item must not rely on aliases
            assert parse_number(s.reference) is not None and not s.aliases, s.id
        assert normalize(s.reference) not in normalize(s.prompt).split(), (
            f"{s.id}: the question gives its answer away"
        )


@pytest.mark.parametrize("template", ["{}", "The answer is {}.", "I believe it is {}, as far as I know."])
def test_every_reference_and_alias_is_judged_correct(template):
    for s in ALL:
        for ref in s.references:
            verdict = FACTS.score(s, template.format(ref))
            assert verdict.correct, (s.id, ref, verdict)


def test_hedged_and_negated_answers_are_judged_wrong():
    for s in ALL:
        if s.metadata["answer_type"] == "text":
            assert not FACTS.score(s, f"Either {s.reference} or something else.").correct, s.id
            assert not FACTS.score(s, f"It is not {s.reference}.").correct, s.id


def test_chemistry_against_periodictable():
    pt = pytest.importorskip("periodictable")
    for s in by_category("chemistry"):
        if m := re.fullmatch(r"What is the chemical symbol for (\w+)\?", s.prompt):
            name = {"aluminium": "aluminum", "caesium": "cesium"}.get(m.group(1), m.group(1))
            assert getattr(pt, name).symbol == s.reference, s.id
        elif m := re.fullmatch(r"Which chemical element has the symbol (\w+)\?", s.prompt):
            assert pt.elements.symbol(m.group(1)).name in [normalize(r) for r in s.references], s.id
        elif m := re.fullmatch(r"What is the atomic number of (\w+)\?", s.prompt):
            assert getattr(pt, m.group(1)).number == int(s.reference), s.id
        else:
            pytest.fail(f"unchecked chemistry question {s.id}")


CONVERSIONS = {
    "centimetres are in a metre": ("meter", "centimeter"),
    "metres are in a kilometre": ("kilometer", "meter"),
    "grams are in a kilogram": ("kilogram", "gram"),
    "millilitres are in a litre": ("liter", "milliliter"),
    "seconds are in a minute": ("minute", "second"),
    "hours are in a day": ("day", "hour"),
    "inches are in a foot": ("foot", "inch"),
    "feet are in a yard": ("yard", "foot"),
    "ounces are in a pound": ("pound", "ounce"),
    "pounds are in a stone": ("stone", "pound"),
    "centimetres are in an inch": ("inch", "centimeter"),
    "feet are in a mile": ("mile", "foot"),
    "yards are in a mile": ("mile", "yard"),
    "degrees are in a right angle": ("turn / 4", "degree"),
    "degrees are in a full circle": ("turn", "degree"),
    "bits are in a byte": ("byte", "bit"),
    "bytes are in a kibibyte": ("kibibyte", "byte"),
    "nanometres are in a micrometre": ("micrometer", "nanometer"),
    "metres are in a nautical mile": ("nautical_mile", "meter"),
}


def test_unit_conversions_against_pint():
    pint = pytest.importorskip("pint")
    ureg = pint.UnitRegistry()
    checked = 0
    for s in by_category("units"):
        for phrase, (src, dst) in CONVERSIONS.items():
            if phrase in s.prompt:
                assert ureg(src).to(dst).magnitude == pytest.approx(float(s.reference)), s.id
                checked += 1
        if "degrees Celsius does pure water freeze" in s.prompt:
            assert ureg.Quantity(273.15, ureg.kelvin).to("degC").magnitude == pytest.approx(
                float(s.reference), abs=1e-9
            )
        if "absolute zero in degrees Celsius" in s.prompt:
            assert ureg.Quantity(0, ureg.kelvin).to("degC").magnitude == pytest.approx(float(s.reference))
        if "degrees Fahrenheit does pure water boil" in s.prompt:
            assert ureg.Quantity(100, ureg.degC).to("degF").magnitude == pytest.approx(float(s.reference))
    assert checked == len(CONVERSIONS)


def test_capitals_against_countryinfo():
    countryinfo = pytest.importorskip("countryinfo")
    checked = 0
    for s in by_category("capitals"):
        country = re.fullmatch(r"What is the capital of (?:the )?(.+)\?", s.prompt).group(1)
        try:
            capital = countryinfo.CountryInfo(country).capital()
        except KeyError:
            continue  # not in that package's data
        assert normalize(capital) in [normalize(r) for r in s.references], (s.id, capital)
        checked += 1
    assert checked >= 0.9 * len(by_category("capitals"))
