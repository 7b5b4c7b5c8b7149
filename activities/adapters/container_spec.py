"""What one deployment's container is: its image, name, port, environment, health check,
limits and capabilities, validated before Docker sees any of it."""

import re
from collections.abc import Mapping
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

from activities.adapters.appconfig import DEFAULT_CPUS, DEFAULT_MEMORY, AppConfig, health_test
from activities.adapters.docker import (
    LABEL_DEPLOYMENT,
    LABEL_PORT,
    LABEL_PROJECT,
    container_name,
    image_tag,
    labels_for,
)
from slipway.names import validate_deployment_id, validate_project_name

DEFAULT_PIDS = 1024
"""A fork bomb in one app must not take the server down."""

_NAME = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,127}$")
_CAPABILITY = re.compile(r"^(CAP_)?[A-Z_]+$")
_ENV_KEY = re.compile(r"^[^=\x00]+$")


class ContainerSpec(BaseModel):
    """Everything needed to run one deployment's container. `env` holds secrets: they are
    `SecretStr`, so the spec's repr and JSON show them masked and it cannot carry them into
    logs or workflow history by accident; only `start_container` reads them."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    project: str
    deployment_id: str
    image: str = Field(min_length=1)
    name: str
    port: int = Field(ge=1, le=65535, description="The app's port; passed to it as PORT.")
    env: dict[str, SecretStr] = Field(default_factory=dict, repr=False)
    labels: dict[str, str] = Field(default_factory=dict)
    health_test: list[str] | None = Field(
        default=None, description="Docker's test list; None keeps the image's HEALTHCHECK."
    )
    health_interval: float = Field(default=2.0, ge=0.001)
    health_timeout: float = Field(default=3.0, ge=0.001)
    health_retries: int = Field(default=3, ge=1)
    health_start_period: float = Field(default=10.0, ge=0)
    memory: int = Field(default=DEFAULT_MEMORY, ge=6 * 1024 * 1024, description="Bytes.")
    cpus: float = Field(default=DEFAULT_CPUS, gt=0)
    pids_limit: int = Field(default=DEFAULT_PIDS, ge=16)
    restart: Literal["unless-stopped", "no"] = Field(
        default="unless-stopped",
        description="Docker's restart policy. `unless-stopped` brings the app back after it "
        "exits, after the Docker Engine restarts and after the machine reboots (Docker does "
        "not restart `on-failure` containers when the daemon restarts), but not once Slipway "
        "stopped it.",
    )
    cap_add: list[str] = Field(default_factory=list)
    network_mode: str = Field(default="host", min_length=1)

    @field_validator("project")
    @classmethod
    def _project(cls, value: str) -> str:
        return validate_project_name(value)

    @field_validator("deployment_id")
    @classmethod
    def _deployment(cls, value: str) -> str:
        return validate_deployment_id(value)

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not _NAME.fullmatch(value):
            raise ValueError(f"invalid container name {value!r}")
        return value

    @field_validator("env")
    @classmethod
    def _env(cls, value: dict[str, SecretStr]) -> dict[str, SecretStr]:
        for key in value:
            if not _ENV_KEY.fullmatch(key):
                raise ValueError(f"invalid environment variable name {key!r}")
        if "PORT" in value:
            raise ValueError("PORT is set by Slipway to the app's port; remove it from the env")
        return value

    @field_validator("labels")
    @classmethod
    def _labels(cls, value: dict[str, str]) -> dict[str, str]:
        reserved = {LABEL_PROJECT, LABEL_DEPLOYMENT, LABEL_PORT} & value.keys()
        if reserved:
            raise ValueError(f"labels {sorted(reserved)} are Slipway's own")
        return value

    @field_validator("cap_add")
    @classmethod
    def _cap_add(cls, value: list[str]) -> list[str]:
        for cap in value:
            if not _CAPABILITY.fullmatch(cap) or cap.removeprefix("CAP_") == "ALL":
                raise ValueError(f"capability {cap!r} cannot be added")
        return value

    def all_labels(self) -> dict[str, str]:
        """The spec's labels plus Slipway's, which say whose container this is."""
        return {
            **self.labels,
            **labels_for(self.project, self.deployment_id),
            LABEL_PORT: str(self.port),
        }


def spec_for(
    project: str,
    deployment_id: str,
    port: int,
    config: AppConfig,
    detected_type: str,
    env: Mapping[str, str] | None = None,
    network_mode: str = "host",
) -> ContainerSpec:
    """The container spec of a deployment from its app config, with the deterministic image
    tag and container name."""
    return ContainerSpec(
        project=project,
        deployment_id=deployment_id,
        image=image_tag(project, deployment_id),
        name=container_name(project, deployment_id),
        port=port,
        env={key: SecretStr(value) for key, value in (env or {}).items()},
        health_test=health_test(detected_type, config, port),
        health_interval=config.health.interval,
        health_timeout=config.health.timeout,
        health_retries=config.health.retries,
        health_start_period=config.health.start_period,
        memory=config.memory,
        cpus=config.cpus,
        cap_add=list(config.capabilities),
        network_mode=network_mode,
    )
