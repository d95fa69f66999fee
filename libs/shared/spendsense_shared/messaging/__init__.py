"""The event bus: envelope and catalog, transactional outbox and relay, SQS consumer runtime, topology."""
