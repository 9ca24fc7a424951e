"""The actors of a branch: Branch (entry point), App, Queue, Instance and Supervisor."""
