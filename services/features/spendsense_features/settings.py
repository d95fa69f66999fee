from pydantic import Field

from spendsense_shared.settings import ServiceSettings


class FeaturesSettings(ServiceSettings):
    service_name: str = "features"
    analysis_processes: int = Field(
        0,
        ge=0,
        description="Processes the worker analyzes uploads' chunks in (0: one per core; 1: on a thread of "
        "the worker itself)",
    )
