"""The recommender service's worker: outbox relay and event consumer.

Run with `python -m spendsense_recommender.worker`.
"""

from spendsense_recommender.adapters.build_pool import start_build_server
from spendsense_recommender.bootstrap import SERVICE
from spendsense_shared.service import run_worker_process

if __name__ == "__main__":
    start_build_server()
    run_worker_process(SERVICE)
