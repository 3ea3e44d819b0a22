"""Test doubles that speak real protocols (HTTP), driven by the tests."""
