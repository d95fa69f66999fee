"""SpendSense features service."""
