"""Command-line programs: ``cyme-branch`` (the service) and ``cyme`` (the client)."""
