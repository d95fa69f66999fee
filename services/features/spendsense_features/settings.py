from pydantic import Field

from spendsense_shared.settings import ServiceSettings


class FeaturesSettings(ServiceSettings):
    service_name: str = "features"
    analysis_processes: int = Field(
        default=0,
        ge=0,
        description="Processes that analyze batches of users for the worker: 0, one per core; 1, in a"
        " thread of the worker itself",
    )
