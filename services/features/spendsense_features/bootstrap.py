"""The features service's one composition root: builds its adapters (the data bucket's object store,
the rule-set store, the SQL unit of work) and wires them into its use cases and event handlers."""

from __future__ import annotations

from functools import partial

from spendsense_features.adapters.analysis_pool import AnalysisPool
from spendsense_features.adapters.orm import messaging
from spendsense_features.adapters.unit_of_work import SqlFeaturesUnitOfWork
from spendsense_features.api.profile import router as profile_router
from spendsense_features.api.rules import router as rules_router
from spendsense_features.domain.commands import (
    ActivateRuleSet,
    AddRuleSet,
    GetPersona,
    GetRuleSet,
    GetSignals,
    ListRuleSets,
)
from spendsense_features.handlers import profile, rules
from spendsense_features.handlers.ahead import Prepared, analyze_ahead
from spendsense_features.handlers.analysis import Analyzer, analyze_on_a_thread, analyze_upload
from spendsense_features.handlers.erasure import erase_user
from spendsense_features.handlers.merge import merge_users
from spendsense_features.handlers.rescore import rescore_all
from spendsense_features.handlers.rule_sets import RuleSetStore
from spendsense_features.settings import FeaturesSettings
from spendsense_shared.consent import ProjectedConsent, consent_handlers
from spendsense_shared.erasure import forget_erased_user
from spendsense_shared.messagebus import MessageBus
from spendsense_shared.platform import Platform
from spendsense_shared.service import ServiceDefinition, Wiring
from spendsense_shared.storage import ObjectStore


def bootstrap(platform: Platform) -> Wiring:
    data = ObjectStore(platform.aws, platform.topology.buckets["data"], "")
    rule_sets = RuleSetStore()
    settings = platform.settings
    processes = settings.analysis_processes if isinstance(settings, FeaturesSettings) else 1
    # Started at the first upload.ingested (only the worker has any): the API processes never start one.
    analyzer: Analyzer = analyze_on_a_thread
    if processes != 1:
        analyzer = pool = AnalysisPool(processes or None)
        platform.closers.append(pool.close)
    prepared = Prepared()  # chunks analyzed on upload.staged, until their upload.ingested takes them
    platform.closers.append(prepared.close)
    uow = platform.database.uow_factory(SqlFeaturesUnitOfWork)
    # Reads outside a transaction (no BEGIN, no ROLLBACK: two round trips fewer). Under READ COMMITTED,
    # PostgreSQL's default, each statement of a transaction sees its own snapshot anyway.
    read = platform.database.read_uow_factory(SqlFeaturesUnitOfWork)
    bus = MessageBus(
        {
            AddRuleSet: lambda c: rules.add_rule_set(c, uow(), rule_sets),
            ActivateRuleSet: lambda c: rules.activate_rule_set(c, uow(), rule_sets),
            ListRuleSets: lambda q: rules.list_rule_sets(q, uow(), rule_sets),
            GetRuleSet: lambda q: rules.get_rule_set(q, uow(), rule_sets),
            GetSignals: lambda q: profile.get_signals(q, uow()),
            GetPersona: lambda q: profile.get_persona(q, read()),
        }
    )
    return Wiring(
        unit_of_work=uow,
        bus=bus,
        event_handlers={
            **consent_handlers(),
            "upload.staged": partial(
                analyze_ahead, store=data, rule_sets=rule_sets, prepared=prepared, analyzer=analyzer
            ),
            "upload.ingested": partial(
                analyze_upload, store=data, rule_sets=rule_sets, analyzer=analyzer, prepared=prepared
            ),
            "personas.rescore_requested": partial(
                rescore_all, store=data, rule_sets=rule_sets, analyzer=analyzer
            ),
            "user.merged": merge_users,
            "user.erasure_requested": partial(erase_user, store=data),
            "user.erased": forget_erased_user,
        },
        consent=ProjectedConsent(read, cache=platform.read_cache),
    )


SERVICE = ServiceDefinition(
    name="features",
    title="SpendSense features",
    settings_class=FeaturesSettings,
    tables=messaging,
    routers=[profile_router, rules_router],
    bootstrap=bootstrap,
    caches_reads=True,
)
