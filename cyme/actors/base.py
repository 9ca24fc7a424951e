"""What every cyme actor shares: a dispatch table of typed handlers and uniform replies."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, ClassVar

from thespian.actors import Actor, ActorExitRequest, ActorSystemMessage

from cyme.actors.internal import Configure, Routed
from cyme.actors.messages import ErrorReply, Reply
from cyme.config import BranchConfig
from cyme.errors import CymeError, InternalError
from cyme.models import bind

log = logging.getLogger("cyme.actors")

#: Returned by a handler that will reply later (e.g. once a worker answers a ping).
DEFERRED = object()

Handler = Callable[[Any, Any], Any]


class CymeActor(Actor):  # type: ignore[misc]
    """An actor that dispatches on message type and turns outcomes into replies.

    A handler ``(message, reply_to) -> value`` returns the reply value, raises a
    ``CymeError`` (sent as an ``ErrorReply``), or returns ``DEFERRED`` to answer later.
    Unknown messages get an explicit error reply, never silence.
    """

    #: Human name used in log lines, e.g. ``{Supervisor}``.
    label: ClassVar[str] = "Actor"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.config: BranchConfig | None = None
        self.peers: dict[str, Any] = {}
        self.handlers: dict[type, Handler] = {Configure: self.on_configure}
        self.setup_handlers()

    def setup_handlers(self) -> None:
        """Register this actor's ``{MessageType: handler}`` entries in ``self.handlers``."""

    def on_configure(self, message: Configure, sender: Any) -> Any:
        self.config = message.config
        self.peers = message.peers
        bind(message.config.db_url)
        self.configured()
        return DEFERRED

    def configured(self) -> None:
        """Called once the config is known and the database is bound."""

    def receiveMessage(self, message: Any, sender: Any) -> Any:
        if isinstance(message, Routed):
            request, reply_to = message.request, message.reply_to
        else:
            request, reply_to = message, sender
        handler = self.handlers.get(type(request))
        if handler is None:
            return self.unhandled(request, reply_to)
        request_id = getattr(request, "request_id", "")
        try:
            value = handler(request, reply_to)
        except CymeError as exc:
            log.info("{%s} %s refused: %s", self.label, type(request).__name__, exc.message)
            self.send(reply_to, ErrorReply(request_id, exc.code, exc.message))
        except Exception:
            log.exception("{%s} %s failed: %r", self.label, type(request).__name__, request)
            error = InternalError("internal error; the branch log has the details")
            self.send(reply_to, ErrorReply(request_id, error.code, error.message))
        else:
            if value is not DEFERRED:
                self.send(reply_to, Reply(request_id, value))
        return self.after_message()

    def after_message(self) -> Any:
        """What receiveMessage returns (e.g. a ThespianWatch); None by default."""
        return None

    def unhandled(self, message: Any, reply_to: Any) -> Any:
        if isinstance(message, ActorExitRequest):
            self.on_exit()
            return None
        if isinstance(message, ActorSystemMessage):
            return self.after_message()
        log.warning("{%s} unknown message %s", self.label, type(message).__name__)
        request_id = getattr(message, "request_id", "")
        error = InternalError(f"unknown message type {type(message).__name__}")
        self.send(reply_to, ErrorReply(request_id, error.code, error.message))
        return self.after_message()

    def on_exit(self) -> None:
        """Called when the actor is asked to exit."""

    def reply(self, reply_to: Any, request_id: str, value: Any) -> None:
        """Send a deferred reply."""
        self.send(reply_to, Reply(request_id, value))

    def reply_error(self, reply_to: Any, request_id: str, error: CymeError) -> None:
        """Send a deferred error reply."""
        self.send(reply_to, ErrorReply(request_id, error.code, error.message))
