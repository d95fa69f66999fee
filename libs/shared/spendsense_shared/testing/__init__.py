"""Test support: real embedded servers per test session, isolated state per test, token minting."""
