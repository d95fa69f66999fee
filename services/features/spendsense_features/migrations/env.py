from spendsense_features.adapters.orm import metadata
from spendsense_shared.migrations import run_alembic_env

run_alembic_env(metadata)
