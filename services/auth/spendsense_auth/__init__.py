"""SpendSense auth service."""
