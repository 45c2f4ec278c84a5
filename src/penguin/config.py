"""Settings: ``PENGUIN_*`` environment variables, an optional ``penguin.toml``, and explicit overrides.

Precedence (highest first): keyword arguments, environment, ``penguin.toml`` in the working
directory (or the file named by ``PENGUIN_CONFIG``), defaults. Provider credentials use their
conventional names (``OPENAI_API_KEY``, ``OPENAI_BASE_URL``, ``ANTHROPIC_API_KEY``).
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, field_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from penguin._suggest import did_you_mean
from penguin.errors import UnknownSetting

#: Provider names served by Penguin itself; a named provider cannot take one of them.
BUILTIN_PROVIDERS = frozenset({"openai", "anthropic", "local", "scripted"})
_PROVIDER_NAME = re.compile(r"^[a-z][a-z0-9_-]{0,31}$")
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,127}$")
_HEADER_NAME = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,128}$")


class ProviderSettings(BaseModel):
    """One named provider endpoint (``[providers.<name>]`` in penguin.toml; see ``models.providers``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: Literal["openai", "anthropic"] = Field(
        default="openai", description="Wire protocol: 'openai' (Chat Completions) or 'anthropic' (Messages)."
    )
    base_url: str = Field(
        pattern=r"^https?://[^\s]+$", max_length=2048,
        description="API root, e.g. 'http://10.0.0.5:8000/v1' (openai) or 'https://api.anthropic.com'.",
    )
    api_key_env: str | None = Field(
        default=None, description="NAME of the environment variable holding the key (never the key itself)."
    )
    headers: dict[str, str] = Field(default_factory=dict, description="Extra headers sent with every request.")

    @field_validator("api_key_env")
    @classmethod
    def _env_name(cls, value: str | None) -> str | None:
        if value is not None and not _ENV_NAME.fullmatch(value):
            raise ValueError("must be an environment variable name (letters, digits, '_'), not a key")
        return value

    @field_validator("headers")
    @classmethod
    def _headers(cls, value: dict[str, str]) -> dict[str, str]:
        if len(value) > 32:
            raise ValueError("at most 32 headers")
        for name, text in value.items():
            if not _HEADER_NAME.fullmatch(name):
                raise ValueError(f"{name!r} is not a header name")
            if len(text) > 4096 or "\r" in text or "\n" in text:
                raise ValueError(f"the value of {name!r} is longer than 4096 characters or holds a line break")
        return value

    @staticmethod
    def check_name(name: str) -> str:
        """Raises ValidationFailed for a built-in or malformed provider name."""
        from penguin.errors import ValidationFailed

        if name in BUILTIN_PROVIDERS:
            raise ValidationFailed(f"{name!r} is a built-in provider and cannot be redefined; pick another name",
                                   field="name")
        if not _PROVIDER_NAME.fullmatch(name):
            raise ValidationFailed(f"invalid provider name {name[:40]!r}: 1-32 characters of a-z, 0-9, '_' or '-', "
                                   "starting with a letter", field="name")
        return name


class Settings(BaseSettings):
    """Everything Penguin reads from its environment. Build one and hand it to ``PenguinCore``."""

    model_config = SettingsConfigDict(env_prefix="PENGUIN_", extra="ignore", populate_by_name=True)

    data_dir: Path = Field(default=Path(".penguin"), description="Where the database and caches live.")
    database_url: str | None = Field(
        default=None,
        description="SQLAlchemy async URL. Default: sqlite+aiosqlite:///<data_dir>/penguin.db",
    )
    auto_migrate: bool = Field(
        default=True,
        description="Upgrade an older database schema when Penguin opens it. False: refuse to open it "
        "(MigrationRequired) until `penguin db upgrade` has run; Penguin then never changes the schema itself.",
    )
    model: str | None = Field(
        default=None,
        description=(
            "Default model for agents that set none, as 'provider:model'. Unset: 'openai:gpt-4o-mini' "
            "when OPENAI_API_KEY is set, 'anthropic:claude-sonnet-4-5' when ANTHROPIC_API_KEY is set, "
            "otherwise the embedded 'local:default'."
        ),
    )
    tenant_id: str = Field(default="default", description="Tenant stamped on rows written by this core.")
    auto_create_agents: bool = Field(
        default=True,
        validation_alias=AliasChoices("auto_create_agents", "PENGUIN_AGENTS_AUTO_CREATE"),
        description="Create an unknown but valid agent_id on first chat (else 404).",
    )
    max_iterations: int = Field(default=10, ge=1, le=1000, description="Model calls per turn at most.")
    context_tokens: int = Field(
        default=32_000, ge=256, description="Default context budget (tokens) when the model sets none."
    )

    # Server
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=0, le=65535)
    api_key: str | None = Field(default=None, description="Bearer token required by the API when set.")
    max_body_bytes: int = Field(default=1_048_576, ge=1024, description="Request body limit (bytes).")
    access_log: bool = Field(
        default=False,
        description="Log one line per HTTP request (uvicorn's access log); off by default, as it costs "
        "more per chat than the rest of the HTTP layer.",
    )

    # Observability (penguin.telemetry)
    log_format: Literal["text", "json"] = Field(
        default="text", description="Log lines as readable text or one JSON object each ('json')."
    )
    metrics_agent_limit: int = Field(
        default=50, ge=1,
        description="Agents that keep their own agent_id label on /metrics (the most active); the rest "
        "are summed under agent_id=\"~other\".",
    )

    # Providers
    openai_base_url: str = Field(
        default="https://api.openai.com/v1",
        validation_alias=AliasChoices("openai_base_url", "OPENAI_BASE_URL", "PENGUIN_OPENAI_BASE_URL"),
    )
    openai_api_key: str | None = Field(
        default=None, validation_alias=AliasChoices("openai_api_key", "OPENAI_API_KEY", "PENGUIN_OPENAI_API_KEY")
    )
    anthropic_base_url: str = Field(
        default="https://api.anthropic.com",
        validation_alias=AliasChoices("anthropic_base_url", "ANTHROPIC_BASE_URL", "PENGUIN_ANTHROPIC_BASE_URL"),
    )
    anthropic_api_key: str | None = Field(
        default=None,
        validation_alias=AliasChoices("anthropic_api_key", "ANTHROPIC_API_KEY", "PENGUIN_ANTHROPIC_API_KEY"),
    )
    providers: dict[str, ProviderSettings] = Field(
        default_factory=dict,
        description="Named provider endpoints usable as '<name>:<model>' ([providers.<name>] in penguin.toml).",
    )
    model_timeout: float = Field(default=120.0, gt=0, description="Seconds per model HTTP request.")
    model_retries: int = Field(default=3, ge=0, le=10, description="Retries on 429/5xx/timeouts.")

    # Embedded local model
    local_model_path: Path | None = Field(default=None, description="A GGUF file; default: the bundled one.")
    models_dir: Path | None = Field(
        default=None,
        description="Shared cache of model weights, one per machine: the bundled GGUF (~490 MB) is assembled "
        "here once, whatever the data dir. Default: $XDG_CACHE_HOME/penguin/models, else "
        "~/.cache/penguin/models.",
    )
    local_threads: int = Field(default=1, ge=1, le=64)
    local_context: int = Field(default=4096, ge=256)

    # Workspace and tools (penguin.tools)
    workspace_dir: Path | None = Field(
        default=None, description="Root of the files the workspace tools may touch. Default: <data_dir>/workspace."
    )
    workspace_max_read_bytes: int = Field(default=2_097_152, ge=1, description="Largest file read_file reads.")
    workspace_max_write_bytes: int = Field(default=2_097_152, ge=1, description="Largest content write_file writes.")
    shell_timeout: float = Field(default=30.0, gt=0, description="Seconds a run_shell command may run.")
    shell_max_output_bytes: int = Field(default=65_536, ge=1024, description="run_shell output kept (bytes).")
    # The shell sandbox (penguin.security.sandbox; docs/security.md).
    shell_sandbox: Literal["required", "off"] = Field(
        default="required",
        description="'required': run_shell commands run in a bubblewrap sandbox, and the shell cannot be "
        "enabled where none can be built. 'off': commands run unconfined as the Penguin user.",
    )
    shell_cpu_seconds: int = Field(default=60, ge=1, description="CPU seconds per run_shell process.")
    shell_memory_bytes: int = Field(
        default=1024**3, ge=16 * 1024**2,
        description="Memory of one run_shell command: all its processes (with a memory cgroup), and each one's data.",
    )
    shell_max_processes: int = Field(default=128, ge=4, description="Processes and threads of one run_shell command.")
    shell_max_file_bytes: int = Field(default=1024**3, ge=4096, description="Largest file a run_shell command writes.")
    shell_tmp_bytes: int = Field(default=256 * 1024**2, ge=1024**2, description="Size of a command's private /tmp.")
    shell_read_only_paths: list[Path] = Field(
        default_factory=list, description="Extra host paths run_shell commands may read (e.g. a toolchain in /opt)."
    )
    mcp_connect_timeout: float = Field(default=30.0, gt=0, description="Seconds to start an MCP server.")

    # Shared memory (penguin.memory)
    memory_embedder: str = Field(
        default="none",
        description="Vector search embedder: 'none' (keyword search only), 'minilm' or 'openai:<model>'.",
    )
    memory_auto_recall_k: int = Field(
        default=0, ge=0, le=20,
        description="Memories recalled into each turn's context (0 = off; agents override with "
        "metadata.memory_recall_k).",
    )
    memory_summary_scope: Literal["agent", "shared"] = Field(
        default="agent", description="Scope of the summaries stored in memory when a conversation is compacted."
    )
    memory_summary_model: str | None = Field(
        default=None,
        description="Model that writes compaction summaries; default: the agent's own model (scripted "
        "models fall back to an extractive summary).",
    )

    @field_validator("providers")
    @classmethod
    def _provider_names(cls, value: dict[str, ProviderSettings]) -> dict[str, ProviderSettings]:
        for name in value:
            try:
                ProviderSettings.check_name(name)
            except Exception as exc:  # ValidationFailed, reported by pydantic as this field's error
                raise ValueError(str(exc)) from None
        return value

    def __init__(self, **values: Any) -> None:
        """Read the settings; every name given is checked first.

        Raises:
            UnknownSetting: a keyword argument, a ``PENGUIN_*`` environment variable or a
                ``penguin.toml`` key that is not a setting (the error names the closest one).
        """
        check_setting_names(values, source="keyword argument")
        _check_environment(os.environ)
        super().__init__(**values)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        toml_file = Path(os.environ.get("PENGUIN_CONFIG", "penguin.toml"))
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        if toml_file.is_file():
            toml = TomlConfigSettingsSource(settings_cls, toml_file=toml_file)
            check_setting_names(toml.toml_data, source=f"key in {toml_file}")
            sources.append(toml)
        return tuple(sources)

    # Derived values -------------------------------------------------------------------------

    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite+aiosqlite:///{self.data_dir.resolve() / 'penguin.db'}"

    def resolved_default_model(self) -> str:
        if self.model:
            return self.model
        if self.openai_api_key:
            return "openai:gpt-4o-mini"
        if self.anthropic_api_key:
            return "anthropic:claude-sonnet-4-5"
        return "local:default"

    def ensure_data_dir(self) -> Path:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        return self.data_dir

    def resolved_workspace_dir(self) -> Path:
        return self.workspace_dir if self.workspace_dir is not None else self.data_dir / "workspace"

    def resolved_models_dir(self) -> Path:
        """The model cache: ``models_dir``, else ``$XDG_CACHE_HOME/penguin/models``, else ``~/.cache/penguin/models``.

        A relative ``XDG_CACHE_HOME`` is ignored, as the XDG base directory spec requires.
        """
        if self.models_dir is not None:
            return self.models_dir.expanduser()
        xdg_cache = os.environ.get("XDG_CACHE_HOME", "")
        cache = Path(xdg_cache) if os.path.isabs(xdg_cache) else Path.home() / ".cache"
        return cache / "penguin" / "models"

    def public_dict(self) -> dict[str, Any]:
        """Settings without secrets, for diagnostics."""
        out = self.model_dump(mode="json")
        for key in ("api_key", "openai_api_key", "anthropic_api_key"):
            if out.get(key):
                out[key] = "***"
        return out


#: ``PENGUIN_*`` variables that are not settings: read by the settings loader and the CLI.
NON_SETTING_VARIABLES = frozenset({"PENGUIN_CONFIG", "PENGUIN_URL"})


def _setting_names() -> frozenset[str]:
    """Every name a setting answers to as a keyword or ``penguin.toml`` key (field names and aliases)."""
    names = set(Settings.model_fields)
    for info in Settings.model_fields.values():
        if isinstance(info.validation_alias, AliasChoices):
            names.update(str(c) for c in info.validation_alias.choices if str(c).islower())
    return frozenset(names)


def _variable_names() -> frozenset[str]:
    """Every ``PENGUIN_*`` environment variable that sets something."""
    names = set(NON_SETTING_VARIABLES)
    for name, info in Settings.model_fields.items():
        if isinstance(info.validation_alias, AliasChoices):
            names.update(str(c) for c in info.validation_alias.choices if str(c).startswith("PENGUIN_"))
        else:
            names.add(f"PENGUIN_{name.upper()}")
    return frozenset(names)


def check_setting_names(values: Mapping[str, Any], *, source: str) -> None:
    """Refuse names that are not settings.

    Raises:
        UnknownSetting: naming the first unknown name, where it came from and the closest setting.
    """
    known = _setting_names()
    for name in values:
        if name not in known:
            raise UnknownSetting(f"unknown setting {name!r} ({source}){did_you_mean(name, known)}", field=name)


def _check_environment(environ: Mapping[str, str]) -> None:
    known = _variable_names()
    for name in environ:
        if name.startswith("PENGUIN_") and name not in known:
            raise UnknownSetting(
                f"unknown setting {name!r} (environment variable){did_you_mean(name, known)}", field=name
            )
