"""Settings: defaults < optional config file < HOTLINE_* environment < command-line flags.

One pydantic model validates all of them, so a typo in a config file or a bad port range is reported the
same way wherever it came from.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

DEMO_FLOWS = Path(__file__).resolve().parents[1] / "ivr_flows" / "examples"
DEMO_KB = Path(__file__).resolve().parents[1] / "bot" / "examples" / "northwind_kb.yaml"


class SettingsError(ValueError):
    """Settings that cannot be used; the message says which and why."""


class Settings(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    sip_host: str = "0.0.0.0"
    sip_port: int = Field(5060, ge=0, le=65535)
    http_host: str = "127.0.0.1"
    http_port: int = Field(8080, ge=0, le=65535)
    db: str = "sqlite:///./hotline.db"
    flows: Path | None = None
    rtp_ports: str = "20000-30999"
    answer_delay: int = Field(0, ge=0, le=60_000, description="ms of ringing (180) before answering")
    admin_token: str | None = None
    rtp_timeout: float = Field(30.0, ge=0, description="seconds without RTP before hanging up (0 = never)")
    tts_engine: str = "pyttsx3"
    tts_voice: str | None = None
    tts_cache_dir: Path | None = None
    log_level: str = "info"
    register_aor: str | None = Field(
        None, description="register this address-of-record upstream, e.g. sip:hotline@pbx"
    )
    registrar: str | None = Field(None, description="host:port of the upstream registrar")
    register_username: str | None = None
    register_password: str | None = None
    register_expires: int = Field(300, ge=30, le=86_400)
    default_flow: str = Field("demo", description="flow for calls whose dialed user names no live flow")
    queue_targets: dict[str, str] = Field(
        default_factory=dict, description="queue name -> SIP URI to bridge to (until agent queues exist)"
    )
    recordings_dir: Path = Path("./recordings")
    recordings_retention_days: float | None = Field(
        None, gt=0, le=36_500, description="delete recordings older than this many days (unset: keep them)"
    )
    asr_engine: str = Field("auto", description="auto | vosk | pocketsphinx | off")
    vosk_model: Path | None = Field(None, description="directory of a Vosk model (auto then uses Vosk)")
    asr_min_confidence: float = Field(0.5, ge=0, le=1, description="grammar results below this are no match")
    barge_in_ms: int = Field(300, ge=0, le=5000, description="voiced speech needed to interrupt a prompt")
    callcenter: Path | None = Field(None, description="YAML of queues, agents and users applied at start-up")
    worker_id: str | None = Field(None, description="this worker's name in shared routing state [host-pid]")
    phone_region: str | None = Field(
        None, description="ISO country (GB, US...) for national phone numbers; unset: only +international"
    )
    kb_seed: Path | None = Field(
        DEMO_KB, description="knowledge file imported at start-up when the knowledge base is empty ('none': never)"
    )

    @field_validator("phone_region")
    @classmethod
    def _check_region(cls, value: str | None) -> str | None:
        if value is None or value == "":
            return None
        import phonenumbers

        region = value.upper()
        if region not in phonenumbers.SUPPORTED_REGIONS:
            raise ValueError(f"{value!r} is not a region libphonenumber knows (ISO 3166 alpha-2, e.g. GB, US)")
        return region

    @field_validator("kb_seed", mode="before")
    @classmethod
    def _check_seed(cls, value: object) -> object:
        if value is None or (isinstance(value, str) and value.strip().lower() in ("", "none", "off")):
            return None
        return value

    @field_validator("rtp_ports")
    @classmethod
    def _check_ports(cls, value: str) -> str:
        first, sep, last = value.partition("-")
        if not sep or not first.strip().isdigit() or not last.strip().isdigit():
            raise ValueError("must look like 20000-30999")
        low, high = int(first), int(last)
        if not 1024 <= low < high <= 65535:
            raise ValueError("must be an increasing range within 1024-65535")
        if high - low < 1:
            raise ValueError("needs at least two ports")
        return f"{low}-{high}"

    @field_validator("asr_engine")
    @classmethod
    def _check_asr(cls, value: str) -> str:
        if value not in ("auto", "vosk", "pocketsphinx", "off"):
            raise ValueError("must be auto, vosk, pocketsphinx or off")
        return value

    @field_validator("log_level")
    @classmethod
    def _check_level(cls, value: str) -> str:
        if value.lower() not in ("debug", "info", "warning", "error"):
            raise ValueError("must be debug, info, warning or error")
        return value.lower()

    @model_validator(mode="after")
    def _check_registration(self) -> Settings:
        if (self.register_aor is None) != (self.registrar is None):
            raise ValueError("register_aor and registrar go together")
        if self.registrar is not None:
            host, _, port = self.registrar.rpartition(":")
            if not host or not port.isdigit():
                raise ValueError("registrar must be host:port")
        return self

    @model_validator(mode="after")
    def _check_flows(self) -> Settings:
        if self.flows is not None and not self.flows.exists():
            raise ValueError(f"flows path {self.flows} does not exist")
        if self.callcenter is not None and not self.callcenter.is_file():
            raise ValueError(f"callcenter file {self.callcenter} does not exist")
        if self.kb_seed is not None and not self.kb_seed.is_file():
            raise ValueError(f"kb_seed {self.kb_seed} is not a file")
        return self

    @property
    def rtp_range(self) -> tuple[int, int]:
        low, high = self.rtp_ports.split("-")
        return int(low), int(high)

    @property
    def flows_path(self) -> Path:
        return self.flows or DEMO_FLOWS

    def ensure_admin_token(self) -> tuple[str, bool]:
        """The admin token, and whether it was generated now (then it is printed at start-up)."""
        if self.admin_token:
            return self.admin_token, False
        self.admin_token = secrets.token_urlsafe(24)
        return self.admin_token, True


def load_settings(config_file: Path | None = None, overrides: dict[str, Any] | None = None) -> Settings:
    """Merge the layers and validate once. Unknown keys anywhere are an error, not silently ignored."""
    data: dict[str, Any] = {}
    config_file = config_file or (
        Path(os.environ["HOTLINE_CONFIG"]) if os.environ.get("HOTLINE_CONFIG") else None
    )
    if config_file is not None:
        try:
            loaded = yaml.safe_load(config_file.read_text()) or {}
        except (OSError, yaml.YAMLError) as exc:
            raise SettingsError(f"cannot read config file {config_file}: {exc}") from exc
        if not isinstance(loaded, dict):
            raise SettingsError(f"config file {config_file} must be a mapping of setting: value")
        data.update({key.replace("-", "_"): value for key, value in loaded.items()})
    fields = Settings.model_fields
    for name in fields:
        env = os.environ.get(f"HOTLINE_{name.upper()}")
        if env is not None and env != "":
            data[name] = yaml.safe_load(env) if name == "queue_targets" else env
    data.update({k: v for k, v in (overrides or {}).items() if v is not None})
    try:
        return Settings(**data)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or 'settings'}: {err['msg']}" for err in exc.errors()
        )
        raise SettingsError(f"invalid settings: {problems}") from None
