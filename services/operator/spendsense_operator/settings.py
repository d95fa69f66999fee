from pydantic import Field

from spendsense_operator.domain.policy import AutoApprovalPolicy
from spendsense_shared.settings import ServiceSettings


class OperatorSettings(ServiceSettings):
    service_name: str = "operator"
    # Which newly queued items are approved without an operator (SPENDSENSE_AUTO_APPROVAL_POLICY):
    # off (the default) or education_checks_passed — the exact rule is in domain/policy.py. Any other
    # value fails at load with a settings error naming auto_approval_policy.
    auto_approval_policy: AutoApprovalPolicy = Field(
        "off", description="off | education_checks_passed (see spendsense_operator.domain.policy)"
    )
