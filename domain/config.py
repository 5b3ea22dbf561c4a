"""Settings from the environment (prefix WELFARE_), built lazily and passed explicitly."""

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

PROJECT_ROOT = Path(__file__).resolve().parent.parent


SqliteSynchronous = Literal["NORMAL", "FULL"]


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="WELFARE_", extra="ignore")

    data_dir: Path = Field(default=PROJECT_ROOT / "data")
    database_url: str | None = Field(
        default=None,
        description="SQLAlchemy URL; default: a SQLite file in data_dir. "
        "PostgreSQL: postgresql+psycopg://postgres@127.0.0.1:5432/welfare",
    )
    definitions_dir: Path = Field(default=PROJECT_ROOT / "workflow_defs")
    screening: str = Field(
        default="inline",
        description="inline: the automatic step runs inside the submit command; "
        "flow: it is left to the Prefect policy flows.",
    )
    sqlite_synchronous: SqliteSynchronous = Field(
        default="NORMAL",
        description="SQLite durability (the database runs in WAL mode). NORMAL: a commit does "
        "not wait for the disk; a crash of the process or of the API loses nothing, only an "
        "OS crash or power loss can lose the last commits (never corrupt the file) — the "
        "standard setting for WAL, and several times faster per command. FULL: every commit "
        "waits for fsync; choose it on a machine without a UPS where losing the last seconds "
        "of decisions or payments after a power cut is not acceptable.",
    )
    extra_closures: list[str] = Field(
        default_factory=list,
        description="Extra non-working dates (YYYY-MM-DD) announced by the government.",
    )
    extra_working_days: list[str] = Field(default_factory=list)
    lang: str = Field(default="vi", description="Language of CLI output and of defaults: vi | en.")

    # --- API -------------------------------------------------------------------------------
    api_host: str = "127.0.0.1"
    api_port: int = 8000
    public_url: str | None = Field(
        default=None,
        description="Address people reach the API at, for links in e-mails "
        "(default: http://api_host:api_port).",
    )
    secret_key: str | None = Field(
        default=None,
        description="Key that signs access tokens; default: generated once into data_dir/secret.key.",
    )
    token_ttl_minutes: int = Field(default=30, ge=1, le=24 * 60)
    login_max_failures: int = Field(default=5, ge=1)
    login_window_seconds: int = Field(default=900, ge=1)

    # --- e-mail (issue 4) ------------------------------------------------------------------
    smtp_host: str = "127.0.0.1"
    smtp_port: int = 25
    smtp_user: str | None = None
    smtp_password: str | None = None
    smtp_tls: bool = False
    mail_from: str = "Công đoàn Lai Châu <no-reply@congdoan-laichau.vn>"

    # --- event relay (issue 4) -------------------------------------------------------------
    # 2,000: every batch costs Prefect runs (a policy flow per policy, a task) whatever its
    # size, and the e-mail is sent apart from the batch, so a large batch holds its lease for
    # seconds only. A Tết list of 10,000 cases went from 62 batches to 17 (bench/NOTES.md).
    relay_batch_size: int = Field(default=2_000, ge=1)
    relay_max_attempts: int = Field(default=8, ge=1)

    def base_url(self) -> str:
        return (self.public_url or f"http://{self.api_host}:{self.api_port}").rstrip("/")

    def sqlalchemy_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{self.data_dir / 'welfare.db'}"


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
