"""Service settings from the environment (prefix ``LSR_``), one pydantic-settings class."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Everything an operator can tune; ``LSR_DATA_DIR=/data LSR_API_KEYS=k1,k2 lsr serve``."""

    model_config = SettingsConfigDict(env_prefix="LSR_", extra="ignore")

    data_dir: Path = Field(Path("./lsr-data"), description="where collections live")
    api_keys: str = Field("", description="comma-separated Bearer keys; empty = no auth")
    encoders: str = Field(
        "registered",
        description='encoders a collection may use: "registered" (the offline named models), '
        '"*" (also local model folders and Hugging Face ids), or a comma-separated list',
    )
    import_roots: str = Field(
        "",
        description="comma-separated folders that indexing jobs may read; empty = DATA_DIR/import",
    )
    # request limits
    max_batch: int = Field(1000, ge=1, description="documents per write / queries per batch")
    max_text_length: int = Field(20_000, ge=1, description="characters per text")
    max_vector_terms: int = Field(4096, ge=1, description="non-zeros per given vector")
    max_k: int = Field(1000, ge=1)
    max_request_bytes: int = Field(32 * 1024 * 1024, ge=1024)
    body_timeout_s: float = Field(
        30.0, gt=0, description="seconds a request body may take to arrive before a 408"
    )
    max_id_length: int = Field(512, ge=1)
    # concurrency
    threads: int = Field(2, ge=1, description="search/encode worker threads")
    max_pending: int = Field(256, ge=1, description="queued requests per pool before 503")
    # segments
    seal_rows: int = Field(20_000, ge=1, description="seal the mutable segment at this size")
    flat_segment_rows: int = Field(
        2_000, ge=0, description="segments smaller than this are searched exactly (no index)"
    )
    max_segments: int = Field(8, ge=1, description="merge the smallest when there are more")
    compact_deleted_fraction: float = Field(0.3, gt=0, le=1)
    maintenance_interval_s: float = Field(1.0, gt=0)
    calibrate_segments: bool = Field(
        True,
        description="measure each new sealed segment's recall/cost front (needed by recall "
        "targets; segments without one are searched exactly under a target)",
    )
    # live recall
    recall_sample_rate: float = Field(
        0.01, ge=0, le=1, description="share of searches re-run exactly in the background"
    )
    recall_queue: int = Field(
        256, ge=1, description="samples waiting for the background thread; more are dropped"
    )
    recall_window: int = Field(2000, ge=1, description="samples in the running estimate")
    recall_min_samples: int = Field(
        200, ge=1, description="samples before the controller may move a collection's setting"
    )
    recall_confidence: float = Field(0.95, gt=0, lt=1, description="of the estimate's interval")
    recall_seed: int | None = Field(None, description="seed of the sampling (None: random)")
    warmup: bool = Field(True, description="warm Numba and encoders before /readyz is true")

    @property
    def api_key_list(self) -> list[str]:
        return [k.strip() for k in self.api_keys.split(",") if k.strip()]

    @property
    def import_root_list(self) -> list[Path]:
        """The folders jobs may read (default: ``DATA_DIR/import``), resolved."""
        given = [Path(p.strip()) for p in self.import_roots.split(",") if p.strip()]
        return [p.resolve() for p in given or [Path(self.data_dir) / "import"]]
