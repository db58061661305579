"""Where the documentation lives, for links in exceptions and issues (``exc.docs``).

The wheel ships the ``docs/`` folder inside the package (``finetune_embed/docs/``, see ``force-include`` in
pyproject.toml), so a link works on an installed copy without network; in a source checkout (an editable
install) the repository's ``docs/`` folder is used. Links are ``file://`` URIs with the section as fragment.
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["docs_dir", "docs_link"]

_PACKAGE = Path(__file__).resolve().parent


def docs_dir() -> Path:
    """The folder holding errors.md and the other pages: the one shipped in the package, else the checkout's."""
    shipped = _PACKAGE / "docs"
    if (shipped / "errors.md").is_file():
        return shipped
    return _PACKAGE.parent / "docs"


def docs_link(page: str, anchor: str) -> str:
    """A ``file://`` link to ``page`` (e.g. ``errors.md``) at section ``anchor``."""
    return f"{(docs_dir() / page).as_uri()}#{anchor}"
