"""``spendsense eval``: the batch evaluation of SPEC §8 (docs/evaluation.md).

* ``metrics``  - pure: per-user records folded into the metrics document;
* ``records``  - what the pipeline produced (signals, traces, review states) → those records;
* ``offline``  - the pipeline in-process with the services' domain code (``--offline FILE``);
* ``stack``    - the running stack, read through the gateway as an operator;
* ``report``   - metrics.json, metrics.csv, report.md, report.html and traces/;
* ``runner``   - a run from start to files, with progress.
"""
