"""Packaged persona rule sets (data, not code): ``personas-v1.yaml`` is the shipped default."""
