"""Text to text: XSum summaries (ROUGE-L) and WMT translations (sacrebleu's BLEU and chrF), with
LM-Polygraph's prompts (`xsum`, `wmt14`, `wmt19`; `simple_instruct` for chat models).

Their quality is continuous; the verdict a detection AUROC needs is a threshold on it, halluc's
choice (`rouge_l>=0.3` for XSum, `chrf>=50` for WMT: sentence-level chrF is steadier than sentence
BLEU), set another with `--correct-if`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from halluc_benchmarks.base import Sample
from halluc_benchmarks.hub_qa import HubBenchmark
from ucli.errors import BadInput

LANGUAGES = {"cs": "Czech", "de": "German", "en": "English", "fi": "Finnish", "fr": "French", "gu": "Gujarati",
             "hi": "Hindi", "kk": "Kazakh", "lt": "Lithuanian", "ru": "Russian", "zh": "Chinese"}  # fmt: skip


class XSum(HubBenchmark):
    name = "xsum"
    description = "XSum (EdinburghNLP/xsum): one-sentence summaries of BBC articles, ROUGE-L."
    hub = ("EdinburghNLP/xsum", None)
    revision = "refs/convert/parquet"  # the hub's parquet copy: datasets 4+ runs no loading script
    splits = ("train", "validation", "test")
    fields = ("document", "summary", "id")
    source = "LM-Polygraph xsum / xsum_simple_instruct"
    correct_if = "rouge_l>=0.3"

    def sample(self, row: dict[str, Any], split: str, index: int, where: str) -> Sample:
        return Sample(f"xsum-{row['id']}", str(row["document"]).strip(), str(row["summary"]).strip())

    def base_prompt(self, sample: Sample) -> str:
        return f"Here's the text and it's short one-sentence summary.\n\nText:\n{sample.prompt}\n\nSummary (one sentence):\n"

    def chat_message(self, sample: Sample) -> str:
        return f"Provide a short one-sentence summary for the following text.\n\nHere's the text:\n{sample.prompt} (End of text).\n\nSummary:\n"


class WMT(HubBenchmark):
    """A WMT news test set; `-B pair=de-en` translates German into English, `en-de` the other way."""

    year = ""
    pairs: tuple[str, ...] = ()
    fewshot_split = None
    correct_if = "chrf>=50"
    source = "LM-Polygraph wmt14 / wmt19 (and their simple_instruct)"

    def __init__(self, data_file: str | Path | None = None, pair: str = "de-en"):
        super().__init__(data_file, 0)
        src, _, tgt = pair.partition("-")
        config = next((c for c in self.pairs if set(c.split("-")) == {src, tgt}), None)
        if config is None or src == tgt:
            raise BadInput(f"benchmark '{self.name}': -B pair={pair}: no such language pair (pairs: "
                           f"{', '.join(self.pairs)}, either direction)")  # fmt: skip
        self.source_lang, self.target_lang = src, tgt
        self.hub = (f"wmt/{self.name}", config)

    def sample(self, row: dict[str, Any], split: str, index: int, where: str) -> Sample:
        pair = row.get("translation")
        if not isinstance(pair, dict) or any(
            not isinstance(pair.get(k), str) for k in (self.source_lang, self.target_lang)
        ):
            raise BadInput(
                f"{where}: field 'translation': expected a dict with '{self.source_lang}' and '{self.target_lang}' texts"
            )
        sid = f"{self.name}-{self.source_lang}{self.target_lang}-{split}-{index}"
        return Sample(sid, pair[self.source_lang].strip(), pair[self.target_lang].strip())

    def base_prompt(self, sample: Sample) -> str:
        src, tgt = LANGUAGES[self.source_lang], LANGUAGES[self.target_lang]
        return (f"Here is a sentence in {src} language and its translation in {tgt} language.\n\n"
                f"Original:\n{sample.prompt}\nTranslation:\n")  # fmt: skip

    def chat_message(self, sample: Sample) -> str:
        src, tgt = LANGUAGES[self.source_lang], LANGUAGES[self.target_lang]
        return f"Translate the following {src} text into {tgt}, give only the translation.\n\nOriginal:\n{sample.prompt}\nTranslation:\n"


class WMT14(WMT):
    name = "wmt14"
    description = (
        "WMT14 news (wmt/wmt14, newstest2014): -B pair=de-en (cs, de, fr, hi, ru with en), BLEU and chrF."
    )
    splits = ("train", "validation", "test")
    pairs = ("cs-en", "de-en", "fr-en", "hi-en", "ru-en")
    fields = ("translation",)


class WMT19(WMT):
    name = "wmt19"
    description = "WMT19 news (wmt/wmt19, newstest2018 as validation): -B pair=de-en (cs, de, fi, gu, kk, lt, ru, zh with en; fr-de)."
    splits = ("train", "validation")
    pairs = ("cs-en", "de-en", "fi-en", "gu-en", "kk-en", "lt-en", "ru-en", "zh-en", "fr-de")
    fields = ("translation",)
