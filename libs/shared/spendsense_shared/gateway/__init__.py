"""The local API gateway: routes public ``/api/v1`` paths to the owning service from one route table."""
