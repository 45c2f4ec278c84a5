"""Named provider endpoints: ``<name>:<model>`` strings served by an OpenAI-compatible or Anthropic URL.

A vLLM box and OpenRouter side by side are two providers, each with its base URL, the *name* of
the environment variable that holds its key (never the key itself), and extra headers::

    [providers.vllm]
    base_url = "http://10.0.0.5:8000/v1"

    [providers.openrouter]
    base_url = "https://openrouter.ai/api/v1"
    api_key_env = "OPENROUTER_API_KEY"
    headers = { "HTTP-Referer" = "https://example.org" }

An agent then uses ``model = "openrouter:meta-llama/llama-3.1-8b-instruct"``. Providers come from
``Settings.providers`` (``penguin.toml`` or ``PENGUIN_PROVIDERS``; read-only at run time) and
from the API (``PUT /api/v1/providers/{name}``, persisted in the ``kv`` table, surviving
restarts; one defined both ways is the API's). The built-in names (``openai``, ``anthropic``,
``local``, ``scripted``) cannot be redefined. The key is read from the environment when the
provider's first model is built, so it never reaches the database, the API or a log line; header
values whose name looks secret (``authorization``, ``*key*``, ``*token*``, ``*secret*``) are
shown masked.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import partial
from typing import Any, Literal

from penguin.bus.kv import KVStore
from penguin.config import BUILTIN_PROVIDERS, ProviderSettings, Settings
from penguin.errors import Conflict, NotFound
from penguin.models.base import Model
from penguin.models.registry import ModelRegistry, RetryHook

NAMESPACE = "providers"
_SECRET_HEADER = re.compile(r"authorization|key|token|secret|cookie", re.IGNORECASE)
MASK = "***"

Kind = Literal["openai", "anthropic"]


class ProviderNotFound(NotFound):
    code = "provider-not-found"
    title = "Provider not found"


@dataclass(frozen=True, slots=True, kw_only=True)
class Provider:
    """One named endpoint."""

    name: str
    #: The wire protocol: ``openai`` (Chat Completions) or ``anthropic`` (Messages).
    kind: Kind
    #: API root: with the version for ``openai`` (``.../v1``), without it for ``anthropic``.
    base_url: str
    #: The environment variable holding the key (sent as a bearer token / ``x-api-key``); None: no key.
    api_key_env: str | None = None
    #: Sent with every request.
    headers: Mapping[str, str] = field(default_factory=dict)
    #: Where it was defined: ``config`` (settings, read-only here) or ``api`` (persisted).
    source: Literal["config", "api"] = "api"

    def to_dict(self) -> dict[str, Any]:
        """The public form: header values that look secret are masked; ``key_set`` says whether
        the key's variable is set in the server's environment."""
        return {
            "name": self.name,
            "kind": self.kind,
            "base_url": self.base_url,
            "api_key_env": self.api_key_env,
            "key_set": bool(self.api_key_env and os.environ.get(self.api_key_env)),
            "headers": {k: MASK if _SECRET_HEADER.search(k) else v for k, v in self.headers.items()},
            "source": self.source,
        }

    def stored(self) -> dict[str, Any]:
        return {"kind": self.kind, "base_url": self.base_url, "api_key_env": self.api_key_env,
                "headers": dict(self.headers)}


def _build(provider: Provider, model: str, settings: Settings, *, on_retry: RetryHook | None) -> Model:
    key = os.environ.get(provider.api_key_env) if provider.api_key_env else None
    options: dict[str, Any] = {
        "base_url": provider.base_url, "api_key": key, "timeout": settings.model_timeout,
        "retries": settings.model_retries, "provider": provider.name, "headers": dict(provider.headers),
        "on_retry": on_retry,
    }
    if provider.kind == "anthropic":
        from penguin.models.anthropic import AnthropicModel

        return AnthropicModel(model, **options)
    from penguin.models.openai import OpenAIModel

    return OpenAIModel(model, **options)


class Providers:
    """The named providers of one core, registered in its ``ModelRegistry``.

    Args:
        settings: the providers of ``Settings.providers`` (read-only here).
        kv: where providers defined over the API are kept.
        models: the registry that resolves ``<name>:<model>``.
        on_retry: the retry metric, as for the built-in wire clients.
    """

    def __init__(self, settings: Settings, kv: KVStore, models: ModelRegistry, *,
                 on_retry: RetryHook | None = None) -> None:
        self._settings = settings
        self._kv = kv
        self._models = models
        self._on_retry = on_retry
        self._providers: dict[str, Provider] = {}
        for name, config in settings.providers.items():
            self._install(_from_settings(name, config, "config"))

    async def load(self) -> None:
        """Add the providers persisted over the API."""
        for name, stored in (await self._kv.load(NAMESPACE)).items():
            self._install(_from_settings(name, ProviderSettings.model_validate(stored), "api"))

    def list(self) -> list[Provider]:
        return [self._providers[n] for n in sorted(self._providers)]

    def get(self, name: str) -> Provider:
        """Raises ProviderNotFound."""
        provider = self._providers.get(name)
        if provider is None:
            raise ProviderNotFound(f"no provider {name!r}; define it with PUT /api/v1/providers/{{name}} "
                                   "or [providers.<name>] in penguin.toml", field="name")
        return provider

    async def put(self, name: str, config: ProviderSettings) -> tuple[Provider, bool]:
        """Define or replace ``name``; returns it and whether it is new. Models of a replaced
        provider are rebuilt on next use.

        Raises:
            ValidationFailed: a built-in or malformed name.
        """
        check_name(name)
        provider = _from_settings(name, config, "api")
        created = name not in self._providers
        await self._forget(name)
        self._install(provider)
        self._kv.put(NAMESPACE, name, provider.stored())
        await self._kv.commit()
        return provider, created

    async def delete(self, name: str) -> Provider:
        """Remove a provider defined over the API.

        Raises:
            ProviderNotFound: no such provider. Conflict: it is defined in the settings.
        """
        provider = self.get(name)
        if provider.source == "config":
            raise Conflict(f"provider {name!r} is defined in the settings (penguin.toml or PENGUIN_PROVIDERS); "
                           "remove it there", field="name")
        await self._forget(name)
        self._providers.pop(name, None)
        self._kv.delete(NAMESPACE, name)
        await self._kv.commit()
        return provider

    def _install(self, provider: Provider) -> None:
        self._providers[provider.name] = provider
        self._models.register_provider(provider.name, partial(_build, provider, on_retry=self._on_retry))

    async def _forget(self, name: str) -> None:
        if name in self._providers:
            await self._models.drop_provider(name)


def check_name(name: str) -> str:
    """Raises ValidationFailed for a built-in or malformed provider name."""
    return ProviderSettings.check_name(name)


def _from_settings(name: str, config: ProviderSettings, source: Literal["config", "api"]) -> Provider:
    check_name(name)
    return Provider(name=name, kind=config.kind, base_url=config.base_url, api_key_env=config.api_key_env,
                    headers=dict(config.headers), source=source)


__all__ = ["BUILTIN_PROVIDERS", "MASK", "Provider", "ProviderNotFound", "Providers", "check_name"]
