from spendsense_shared.settings import ServiceSettings


class OperatorSettings(ServiceSettings):
    service_name: str = "operator"
