"""``/api/v1/providers``: named provider endpoints usable as ``<name>:<model>`` (see models.providers).

Providers defined here are persisted; those of ``penguin.toml`` are listed with ``source:
"config"`` and cannot be changed or removed here. Keys never travel: a provider names the
environment variable that holds its key (``api_key_env``), and answers say only whether that
variable is set (``key_set``); header values that look secret are masked.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Response
from pydantic import BaseModel, ConfigDict, Field

from penguin.api.routes._docs import problems
from penguin.api.state import Api

router = APIRouter(prefix="/providers", tags=["providers"])

NamePath = Annotated[
    str, Path(max_length=64, description="Provider name: 1-32 of a-z 0-9 _ -, starting with a letter.")
]

_EXAMPLE: dict[str, Any] = {"name": "openrouter", "kind": "openai", "base_url": "https://openrouter.ai/api/v1",
            "api_key_env": "OPENROUTER_API_KEY", "key_set": True, "headers": {"HTTP-Referer": "https://example.org"},
            "source": "api"}


class ProviderBody(BaseModel):
    """A provider definition (the name is in the path)."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"kind": "openai", "base_url": "https://openrouter.ai/api/v1", "api_key_env": "OPENROUTER_API_KEY",
         "headers": {"HTTP-Referer": "https://example.org"}}]})

    kind: Literal["openai", "anthropic"] = Field(default="openai", description="Wire protocol.")
    base_url: str = Field(max_length=2048, description="API root (with /v1 for openai).")
    api_key_env: str | None = Field(default=None, max_length=128,
                                    description="NAME of the environment variable holding the key.")
    headers: dict[str, str] = Field(default_factory=dict, description="Extra headers sent with every request.")


class ProviderInfo(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [_EXAMPLE]})

    name: str
    kind: Literal["openai", "anthropic"]
    base_url: str
    api_key_env: str | None
    key_set: bool = Field(description="Whether api_key_env is set in the server's environment.")
    headers: dict[str, str] = Field(description="Header values that look secret are shown as ***.")
    source: Literal["config", "api"] = Field(description="config: penguin.toml (read-only here); api: persisted.")


@router.get("", response_model=list[ProviderInfo], summary="List named providers", responses=problems())
async def list_providers(api: Api) -> list[dict[str, Any]]:
    return [p.to_dict() for p in api.core.list_providers()]


@router.get("/{name}", response_model=ProviderInfo, summary="Get a named provider", responses=problems(404))
async def get_provider(name: NamePath, api: Api) -> dict[str, Any]:
    return api.core.get_provider(name).to_dict()


@router.put("/{name}", response_model=ProviderInfo, summary="Define or replace a named provider",
            responses={201: {"model": ProviderInfo, "description": "Created"}, **problems()})
async def put_provider(name: NamePath, body: ProviderBody, api: Api, response: Response) -> dict[str, Any]:
    """Agents can use `<name>:<model>` at once; models of a replaced provider are rebuilt. 201 when new."""
    provider, created = await api.core.put_provider(name, **body.model_dump())
    response.status_code = 201 if created else 200
    return provider.to_dict()


@router.delete("/{name}", response_model=ProviderInfo, summary="Remove a named provider",
               responses=problems(404, 409))
async def delete_provider(name: NamePath, api: Api) -> dict[str, Any]:
    """409 for a provider of penguin.toml. Agents still naming it fail their turns until changed."""
    return (await api.core.delete_provider(name)).to_dict()
