"""The operator service's composition root: builds its adapters (the data bucket's object store for
claim checks, the SQL unit of work, the dead-letter queues on SQS) and wires them into its handlers and
routes."""

from functools import partial

from spendsense_operator.adapters.dead_letters import SqsDeadLetterQueues
from spendsense_operator.adapters.orm import messaging
from spendsense_operator.adapters.unit_of_work import SqlOperatorUnitOfWork
from spendsense_operator.api.dead_letters import router as dead_letters_router
from spendsense_operator.api.review import router as review_router
from spendsense_operator.api.users import router as users_router
from spendsense_operator.domain.commands import (
    ApproveMatching,
    CheckOverride,
    Decide,
    GetDeadLetters,
    GetUser,
    ListAudit,
    ListDeadLetters,
    ListReview,
    Override,
    RedriveDeadLetters,
)
from spendsense_operator.domain.dead_letters import QueueRef
from spendsense_operator.domain.policy import AutoApprovalPolicy
from spendsense_operator.handlers import dead_letters, review, users
from spendsense_operator.handlers.erasure import erase_user
from spendsense_operator.handlers.merge import merge_users
from spendsense_operator.handlers.personas import project_persona, project_personas
from spendsense_operator.handlers.queue import enqueue_batch, enqueue_recommendations
from spendsense_operator.settings import OperatorSettings
from spendsense_shared.consent import ProjectedConsent, consent_handlers
from spendsense_shared.erasure import forget_erased_user
from spendsense_shared.messagebus import MessageBus
from spendsense_shared.platform import Platform
from spendsense_shared.service import ServiceDefinition, Wiring
from spendsense_shared.storage import ObjectStore


def bootstrap(platform: Platform) -> Wiring:
    # settings of the base class (a platform built for another purpose) have no policy: then it is off
    policy: AutoApprovalPolicy = getattr(platform.settings, "auto_approval_policy", "off")
    data = ObjectStore(platform.aws, platform.topology.buckets["data"], "")
    uow = platform.database.uow_factory(SqlOperatorUnitOfWork)
    queues = {s: QueueRef(s, q.name, q.dlq) for s, q in platform.topology.queues.items()}
    dlqs = SqsDeadLetterQueues(platform.aws)
    bus = MessageBus(
        {
            Decide: lambda c: review.decide(c, uow()),
            ApproveMatching: lambda c: review.approve_matching(c, uow()),
            Override: lambda c: review.override(c, uow()),
            CheckOverride: lambda q: review.check_override(q, uow()),
            ListReview: lambda q: review.list_review(q, uow()),
            ListAudit: lambda q: review.list_audit(q, uow()),
            GetUser: lambda q: users.get_user(q, uow()),
            ListDeadLetters: lambda q: dead_letters.list_dead_letters(q, queues, dlqs),
            GetDeadLetters: lambda q: dead_letters.get_dead_letters(q, queues, dlqs),
            RedriveDeadLetters: lambda c: dead_letters.redrive_dead_letters(c, queues, dlqs),
        }
    )
    return Wiring(
        unit_of_work=uow,
        bus=bus,
        event_handlers={
            **consent_handlers(),
            # as published before recommendations.batch_generated
            "recommendations.generated": partial(enqueue_recommendations, store=data, policy=policy),
            "recommendations.batch_generated": partial(enqueue_batch, store=data, policy=policy),
            "persona.assigned": partial(project_persona, store=data),  # as published before personas.assigned
            "personas.assigned": partial(project_personas, store=data),
            "user.merged": merge_users,
            "user.erasure_requested": partial(erase_user, store=data),
            "user.erased": forget_erased_user,
        },
        consent=ProjectedConsent(platform.database.read_uow_factory(SqlOperatorUnitOfWork)),
    )


SERVICE = ServiceDefinition(
    name="operator",
    title="SpendSense operator",
    settings_class=OperatorSettings,
    tables=messaging,
    routers=[review_router, users_router, dead_letters_router],
    bootstrap=bootstrap,
)
