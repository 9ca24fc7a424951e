"""Brokers: URL handling and the private embedded default broker."""
