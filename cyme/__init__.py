"""cyme: run fleets of Celery workers across machines and watch what they do."""

__version__ = "0.1.0"
