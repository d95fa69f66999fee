"""The features service's worker: outbox relay and event consumer (`python -m spendsense_features.worker`)."""

from spendsense_features.adapters.analysis_pool import start_analysis_server
from spendsense_features.bootstrap import SERVICE
from spendsense_shared.service import run_worker_process

if __name__ == "__main__":
    start_analysis_server()
    run_worker_process(SERVICE)
