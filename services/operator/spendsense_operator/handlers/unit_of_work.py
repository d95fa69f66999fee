"""The operator service's unit of work: its repositories (so far, its consent projection)."""

from spendsense_shared.consent import ConsentProjectingUnitOfWork


class OperatorUnitOfWork(ConsentProjectingUnitOfWork):
    """Declares the repositories the operator's handlers use."""
