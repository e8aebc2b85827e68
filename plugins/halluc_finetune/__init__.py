"""`halluc finetune`: QLoRA / LoRA supervised fine-tuning from one TOML recipe.

Python API:

    from halluc_finetune import load_recipe, train_qlora

Names load on first use so that `halluc --help` never imports torch or peft.
"""

from ucli.lazy import lazy_exports

_EXPORTS = {
    "load_recipe": "recipe",
    "QLoRARecipe": "recipe",
    "train_qlora": "qlora",
    "build_examples": "sft_data",
    "RECIPE_SCHEMA": "qlora",
}
__all__ = sorted(_EXPORTS)
__getattr__ = lazy_exports(__name__, _EXPORTS)
