from pydantic import Field, SecretStr

from spendsense_shared.settings import ServiceSettings


class RecommenderSettings(ServiceSettings):
    service_name: str = "recommender"
    build_processes: int = Field(
        0,
        ge=0,
        description="Processes the worker builds recommendations in when it writes from templates (0: one "
        "per core; 1: in the worker itself)",
    )
    # OpenAI, or any OpenAI-compatible endpoint by base URL. Without a key the template writer is used.
    openai_api_key: SecretStr | None = None
    # The architecture document's models (gpt-4-turbo-preview, gpt-3.5-turbo) cannot answer in a strict JSON
    # schema, which the writer requires; these can. The fallback gets one try when the primary fails, within
    # the same total deadline; empty: no fallback.
    openai_model: str = "gpt-4o-mini"
    openai_fallback_model: str | None = "gpt-4.1-nano"
    openai_fallback_reserve_s: float = Field(
        2.0, gt=0, description="Of the total deadline, kept for the fallback"
    )
    # Low on purpose (the document says 0.7): the text rephrases checked facts, it should not improvise.
    openai_temperature: float | None = Field(0.2, ge=0, le=2)
    openai_base_url: str | None = None
    openai_timeout_s: float = Field(4.0, gt=0)
    openai_total_timeout_s: float = Field(5.0, gt=0, description="Per text, retries included")
    openai_max_retries: int = Field(2, ge=0)
    openai_max_concurrency: int = Field(4, ge=1)
    openai_max_tokens: int = Field(400, ge=16)
    openai_token_budget: int = Field(1_000_000, ge=0, description="Tokens per process per hour")
