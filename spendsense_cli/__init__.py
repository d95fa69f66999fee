"""The ``spendsense`` command: the embedded stack, migrations, the bus, dead letters, docs."""
