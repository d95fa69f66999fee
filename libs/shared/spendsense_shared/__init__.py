"""Mechanisms every SpendSense service shares: settings, database, event bus, security, HTTP."""
