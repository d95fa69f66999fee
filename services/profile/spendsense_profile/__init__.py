"""SpendSense profile service."""
