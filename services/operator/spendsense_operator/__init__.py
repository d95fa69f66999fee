"""SpendSense operator service."""
