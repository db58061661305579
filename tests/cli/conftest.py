"""Fixtures of the CLI tests."""

from __future__ import annotations

import hashlib
import os
import shutil
import threading
from collections.abc import Iterator
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

SHARED_CACHE = Path(os.environ["TIKTOKEN_CACHE_DIR"])
OFFICIAL = "https://openaipublic.blob.core.windows.net/encodings/{}.tiktoken"


class _Quiet(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture(name="mirror")
def _mirror(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """A loopback mirror of OpenAI's blob store serving <name>.tiktoken, made from the verified shared copies."""
    folder = tmp_path / "mirror"
    folder.mkdir()
    for stem in ("o200k_base", "cl100k_base", "p50k_base"):
        source = SHARED_CACHE / hashlib.sha1(OFFICIAL.format(stem).encode()).hexdigest()
        shutil.copyfile(source, folder / f"{stem}.tiktoken")
    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(_Quiet, directory=str(folder)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/", folder
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
