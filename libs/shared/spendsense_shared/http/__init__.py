"""HTTP conventions in one place: error body, request ids, size limits, CORS, health, metrics, pagination."""
