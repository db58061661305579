"""``python -m finetune_embed.cli``: the same as the ``finetune-embed`` command."""

from . import main

main(prog_name="finetune-embed")
