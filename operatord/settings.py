"""Process settings (not policy): where the dependencies are and how to log.

Precedence, highest first: command-line options, `OPERATORD_*` environment variables, the
`--config FILE` YAML, defaults. AWS credentials are never settings: boto3's own chain
(including `AWS_ENDPOINT_URL` and `AWS_PROFILE`) stays in charge.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import Field, ValidationError
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    YamlConfigSettingsSource,
)

DEFAULT_POLICY = Path("policies/default.yaml")


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="OPERATORD_", extra="forbid", frozen=True)

    policy: Path | None = Field(
        None, description="Policy file; default: the operatord-policy ConfigMap, else policies/default.yaml."
    )
    prometheus_url: str | None = Field(None, description="Prometheus base URL.")
    kubeconfig: Path | None = Field(
        None, description="kubeconfig file; default: in-cluster, then ~/.kube/config."
    )
    kube_context: str | None = None
    namespace: str = Field("operatord", description="operatord's own namespace (state ConfigMaps, Leases).")
    aws_region: str | None = Field(None, description="AWS region; default: the policy's burst.region.")
    aws_profile: str | None = Field(None, description="AWS profile for boto3's credential chain.")
    log_format: Literal["auto", "json", "console"] = "auto"
    log_level: Literal["debug", "info", "warning", "error"] = "info"

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings, env_settings, YamlConfigSettingsSource(settings_cls))


class SettingsError(Exception):
    """Settings could not be loaded; the message names the source and field."""


def load_settings(config_file: Path | None = None, **overrides: Any) -> Settings:
    """Build Settings from options (None means "not given"), environment and the config file."""
    given = {k: v for k, v in overrides.items() if v is not None}
    cls: type[Settings] = Settings
    if config_file is not None:
        if not config_file.is_file():
            raise SettingsError(f"{config_file}: --config file not found")

        class FromFile(Settings):
            model_config = SettingsConfigDict(**{**Settings.model_config, "yaml_file": config_file})

        cls = FromFile
    try:
        return cls(**given)
    except ValidationError as err:
        where = f"{config_file} / OPERATORD_* environment" if config_file else "OPERATORD_* environment"
        lines = [f"{where}: {'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in err.errors()]
        raise SettingsError("\n".join(lines)) from None
    except Exception as err:  # a malformed YAML config file
        raise SettingsError(f"{config_file}: cannot read settings: {err}") from None
