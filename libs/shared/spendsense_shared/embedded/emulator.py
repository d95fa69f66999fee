"""The AWS emulator as the embedded stack runs it: moto's own server (``moto.server.main``), less two of
its per-request costs, which together took about a third of its CPU under the pipeline's load (py-spy):

* werkzeug logs a line per request (``"POST / HTTP/1.1" 200``) through ``logging``: only warnings and
  errors are logged here;
* moto lists its own package directory (``os.listdir`` and ``isdir`` over ~200 entries) on every
  request to tell a service name from a host name: the list cannot change while the server runs, so it
  is read once.

Run as ``python -m spendsense_shared.embedded.emulator -H 127.0.0.1 -p PORT`` (moto's options)."""

from __future__ import annotations

import logging

from moto import backends
from moto.server import main


def read_module_list_once() -> None:
    modules = tuple(backends.list_of_moto_modules())
    backends.list_of_moto_modules = lambda: modules


if __name__ == "__main__":
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    read_module_list_once()
    main()
