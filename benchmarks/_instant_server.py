"""A loopback ``/v1/embeddings`` server that answers at once from precomputed vectors (benchmarks only).

It exists to measure a *client's* own cost: every answer is assembled from a pool of precomputed unit vectors
(their base64 and JSON text made once), so the server spends almost nothing per request, and what it does
spend is counted per handler thread (``server_cpu``) and reported apart from the client's.

The vector of a text is row ``crc32(text) % POOL`` of the pool, so a client's rows can be checked exactly.
Token-id inputs (LangChain's default) are decoded with cl100k_base first. ``usage`` counts token ids where
they were sent, else a quarter of the characters (an estimate: nothing here bills).
"""

from __future__ import annotations

import base64
import contextlib
import json
import threading
import time
import zlib
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import numpy as np
import numpy.typing as npt

POOL = 1024


class InstantServer:
    """The pool, the counters and the server (see the module docstring)."""

    def __init__(self, dims: int = 1536, seed: int = 0) -> None:
        rng = np.random.default_rng(seed)
        pool = rng.standard_normal((POOL, dims)).astype(np.float32)
        pool /= np.linalg.norm(pool, axis=1, keepdims=True)
        self.pool: npt.NDArray[np.float32] = pool
        self._b64 = [base64.b64encode(row.tobytes()).decode("ascii") for row in pool]
        self._floats = [json.dumps(row.tolist()) for row in pool]
        self._lock = threading.Lock()
        self.server_cpu = 0.0
        self.requests = 0
        self._decode: Any = None

    def row_of(self, text: str) -> int:
        return zlib.crc32(text.encode("utf-8")) % POOL

    def expected(self, text: str) -> npt.NDArray[np.float32]:
        """The vector a client must return for ``text``."""
        out: npt.NDArray[np.float32] = self.pool[self.row_of(text)]
        return out

    def reset(self) -> None:
        with self._lock:
            self.server_cpu = 0.0
            self.requests = 0

    def answer(self, body: bytes) -> bytes:
        started = time.thread_time()
        request = json.loads(body)
        inputs = request["input"]
        if isinstance(inputs, str) or (inputs and isinstance(inputs[0], int)):
            inputs = [inputs]
        tokens = 0
        rows = []
        for item in inputs:
            if isinstance(item, list):  # token ids
                if self._decode is None:
                    import tiktoken

                    self._decode = tiktoken.get_encoding("cl100k_base").decode
                tokens += len(item)
                item = self._decode(item)
            else:
                tokens += len(item) // 4 + 1
            rows.append(self.row_of(item))
        texts = self._b64 if request.get("encoding_format") == "base64" else self._floats
        quote = '"' if texts is self._b64 else ""
        data = ",".join(
            f'{{"object":"embedding","index":{i},"embedding":{quote}{texts[r]}{quote}}}' for i, r in enumerate(rows)
        )
        out = (
            f'{{"object":"list","data":[{data}],"model":"{request.get("model", "")}",'
            f'"usage":{{"prompt_tokens":{tokens},"total_tokens":{tokens}}}}}'
        ).encode()
        with self._lock:
            self.server_cpu += time.thread_time() - started
            self.requests += 1
        return out

    @contextlib.contextmanager
    def serve(self) -> Iterator[str]:
        """Serve on a free loopback port until the block ends; yields the base URL (``.../v1``)."""
        owner = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                payload = owner.answer(self.rfile.read(length))
                self.send_response(200)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, format: str, *args: object) -> None:
                pass

        class Server(ThreadingHTTPServer):
            daemon_threads = True

        server = Server(("127.0.0.1", 0), Handler)
        thread = threading.Thread(target=server.serve_forever, name="instant-server", daemon=True)
        thread.start()
        try:
            yield f"http://127.0.0.1:{server.server_address[1]}/v1"
        finally:
            server.shutdown()
            server.server_close()
            thread.join(timeout=5)
