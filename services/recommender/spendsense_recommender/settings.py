from spendsense_shared.settings import ServiceSettings


class RecommenderSettings(ServiceSettings):
    service_name: str = "recommender"
