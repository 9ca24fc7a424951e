"""Pytest plugins shared by the cyme test suite (load with ``-p`` or ``pytest_plugins``)."""
