from spendsense_shared.migrations import run_alembic_env
from spendsense_recommender.adapters.orm import metadata

run_alembic_env(metadata)
