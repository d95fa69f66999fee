"""Errors that decide what the consumer does with a message."""


class PermanentError(Exception):
    """Retrying cannot help (the event itself is bad): dead-letter it at once."""
