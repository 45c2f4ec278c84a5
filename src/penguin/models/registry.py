"""Resolves ``provider:model`` strings to shared ``Model`` instances.

A model instance is built once per distinct string and shared by every agent that names it (one
loaded local model, one HTTP connection pool per provider). Agents never hold a model object:
they hold the string, so one agent's model switch cannot change another's. Models with work to do
before their first call (local weights) report it to the ``ModelProgress`` observer the registry
is built with, or to the one passed to ``prepare``.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

from penguin.config import Settings
from penguin.errors import InvalidModelString
from penguin.models.base import Model
from penguin.models.progress import LogProgress, ModelProgress, Preparable

MODEL_STRING = re.compile(r"^(?P<provider>[a-z][a-z0-9_-]{0,31}):(?P<model>[^\s]{1,200})$")

ProviderFactory = Callable[[str, Settings], Model]
"""Builds a model from the part after ``provider:`` and the settings."""


@dataclass(frozen=True, slots=True)
class ModelRef:
    """A parsed ``provider:model`` string."""

    provider: str
    model: str

    def __str__(self) -> str:
        return f"{self.provider}:{self.model}"

    @classmethod
    def parse(cls, value: object) -> ModelRef:
        """Parse a model string.

        Raises:
            InvalidModelString: not of the form ``provider:model``.
        """
        if not isinstance(value, str):
            raise InvalidModelString(
                f"model must be a string 'provider:model', got {type(value).__name__}", field="model"
            )
        match = MODEL_STRING.fullmatch(value)
        if match is None:
            raise InvalidModelString(
                f"invalid model string {value[:100]!r}: use 'provider:model', e.g. 'openai:gpt-4o-mini', "
                "'anthropic:claude-sonnet-4-5', 'local:default' or 'scripted:echo'",
                field="model",
            )
        return cls(match["provider"], match["model"])


RetryHook = Callable[[str], None]
"""Told the provider name before each retried model request (the retry metric)."""


def _openai(model: str, settings: Settings, *, on_retry: RetryHook | None = None) -> Model:
    from penguin.models.openai import OpenAIModel

    return OpenAIModel(
        model,
        base_url=settings.openai_base_url,
        api_key=settings.openai_api_key,
        timeout=settings.model_timeout,
        retries=settings.model_retries,
        on_retry=on_retry,
    )


def _anthropic(model: str, settings: Settings, *, on_retry: RetryHook | None = None) -> Model:
    from penguin.models.anthropic import AnthropicModel

    return AnthropicModel(
        model,
        base_url=settings.anthropic_base_url,
        api_key=settings.anthropic_api_key,
        timeout=settings.model_timeout,
        retries=settings.model_retries,
        on_retry=on_retry,
    )


def _scripted(model: str, settings: Settings) -> Model:
    from penguin.models.scripted import make_scripted

    try:
        return make_scripted(model)
    except KeyError as exc:
        raise InvalidModelString(str(exc.args[0]), field="model") from None


class ModelRegistry:
    """Owns every model instance of one ``PenguinCore``.

    Args:
        settings: credentials, base URLs, timeouts and retries of the built-in providers.
        progress: hears about preparations nobody asked for explicitly, e.g. local weights loaded
            by a first call (default: ``LogProgress``, log lines on ``penguin.models``).
        on_retry: told the provider name before each retried request of a wire client.
    """

    def __init__(
        self, settings: Settings, *, progress: ModelProgress | None = None, on_retry: RetryHook | None = None
    ) -> None:
        self._settings = settings
        self._progress: ModelProgress = progress if progress is not None else LogProgress()
        self._on_retry = on_retry
        self._providers: dict[str, ProviderFactory] = {
            "openai": partial(_openai, on_retry=on_retry),
            "anthropic": partial(_anthropic, on_retry=on_retry),
            "local": self._local,
            "scripted": _scripted,
        }
        self._instances: dict[str, Model] = {}

    @property
    def providers(self) -> list[str]:
        return sorted(self._providers)

    def register_provider(self, name: str, factory: ProviderFactory) -> None:
        """Add or replace a provider (e.g. a custom gateway)."""
        self._providers[name] = factory

    async def drop_provider(self, name: str) -> None:
        """Forget provider ``name`` and close the models built from it."""
        self._providers.pop(name, None)
        prefix = f"{name}:"
        dropped = [self._instances.pop(k) for k in [k for k in self._instances if k.startswith(prefix)]]
        await asyncio.gather(*(m.aclose() for m in dropped), return_exceptions=True)

    def register(self, model_string: str, model: Model) -> None:
        """Serve ``model`` for ``model_string`` (e.g. a ``ScriptedModel`` under ``scripted:planner``)."""
        ModelRef.parse(model_string)
        self._instances[model_string] = model

    def validate(self, model_string: object) -> str:
        """Check that a model string parses and names a known provider; return it.

        Raises:
            InvalidModelString: malformed or unknown provider.
        """
        ref = ModelRef.parse(model_string)
        text = str(ref)
        if text in self._instances:
            return text
        if ref.provider not in self._providers:
            raise InvalidModelString(
                f"unknown model provider {ref.provider!r} in {text!r}; known providers: " + ", ".join(self.providers),
                field="model",
            )
        if ref.provider == "scripted":
            self.get(text)  # unknown scripts fail now, not at the first turn
        return text

    def get(self, model_string: str) -> Model:
        """The shared model instance for ``model_string``, built on first use."""
        model = self._instances.get(model_string)
        if model is not None:
            return model
        ref = ModelRef.parse(model_string)
        factory = self._providers.get(ref.provider)
        if factory is None:
            raise InvalidModelString(
                f"unknown model provider {ref.provider!r}; known providers: " + ", ".join(self.providers),
                field="model",
            )
        model = factory(ref.model, self._settings)
        self._instances[model_string] = model
        return model

    async def prepare(self, model_string: str, *, progress: ModelProgress | None = None) -> None:
        """Do the model's first-call work now (local: assemble and load the weights); others: nothing.

        Args:
            model_string: the model to prepare, as ``provider:model``.
            progress: hears about this preparation; default: the registry's observer.

        Raises:
            InvalidModelString: malformed or unknown provider.
            ModelNotInstalled: the local runtime or weights are missing (or the cache is unwritable).
            ModelError: the weights could not be loaded.
        """
        model = self.get(self.validate(model_string))
        if isinstance(model, Preparable):
            await model.load(progress=progress)

    def _local(self, model: str, settings: Settings) -> Model:
        from penguin.models.local import LocalModel

        return LocalModel(model, settings, progress=self._progress)

    async def aclose(self) -> None:
        models = list(self._instances.values())
        self._instances.clear()
        await asyncio.gather(*(m.aclose() for m in models), return_exceptions=True)
