"""The REST API: a falcon WSGI app whose resources ask the local Branch actor."""
