from spendsense_shared.settings import ServiceSettings


class FeaturesSettings(ServiceSettings):
    service_name: str = "features"
