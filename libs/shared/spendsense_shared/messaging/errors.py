"""Errors that decide what the consumer does with a message."""


class PermanentError(Exception):
    """Retrying cannot help (the event itself is bad): dead-letter it at once."""


class AwaitsReconciliation(Exception):
    """Something the event names is not there yet, and a reconciler writes it again (derived data the
    emulator lost with its bucket: a claim-checked payload). Not the event's fault and not an outage:
    the message is retried after a long pause (``ConsumerConfig.awaiting_retry_s``), so its few deliveries
    outlast the reconcilers' round instead of being spent in seconds; dead-lettered only if it never comes."""
