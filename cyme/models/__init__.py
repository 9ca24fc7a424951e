"""The branch's stored state (peewee): apps, queue declarations, instances, worker state."""

from cyme.models.app import App
from cyme.models.db import bind, database, migrate, writing
from cyme.models.instance import Instance, WorkerState
from cyme.models.queue import Queue
from cyme.models.task import Task

__all__ = ["App", "Instance", "Queue", "Task", "WorkerState", "bind", "database", "migrate", "writing"]
