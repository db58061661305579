"""A typo'd base model is an error on the CLI (OpenAI and Azure), with the catalog's closest names."""

from __future__ import annotations

import difflib

import click

__all__ = ["allow_unknown_option", "check_base_model"]

allow_unknown_option = click.option(
    "--allow-unknown-model",
    is_flag=True,
    help="Accept a base model the catalog does not know (one newer than the catalog), with a warning.",
)


def check_base_model(model: str | None, *, provider: str, allow: bool, param_hint: str) -> None:
    """Refuse ``model`` when the catalog does not know it, on OpenAI and Azure OpenAI, unless ``allow``.

    Compatible servers serve models of their own: there an unknown name keeps the library's warning.
    """
    if model is None or allow or provider == "compatible":
        return
    from ..catalog import default_catalog

    cat = default_catalog()
    if cat.find_fine_tune_model(model) is not None:
        return
    names = sorted({n for info in cat.fine_tune_models.values() for n in (info.name, *info.aliases)})
    close = difflib.get_close_matches(cat.base_model_name(model), names, n=3, cutoff=0.6)
    hint = f"did you mean {' or '.join(repr(c) for c in close)}? " if close else ""
    raise click.BadParameter(
        f"{model!r} is not a fine-tunable model in the catalog (as of {cat.as_of}); {hint}"
        "See `finetune-embed models list`, or pass --allow-unknown-model for a model newer than the catalog.",
        param_hint=param_hint,
    )
