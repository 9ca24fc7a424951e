"""The App actor: owns the apps table of this branch."""

from __future__ import annotations

from typing import Any

from cyme import names
from cyme.actors import views
from cyme.actors.base import CymeActor
from cyme.actors.messages import AppInfo, CreateApp, DeleteApp, Deleted, GetApp, ListApps
from cyme.broker import url as broker_url
from cyme.errors import Conflict, NotFound
from cyme.models import App, Instance, Queue, writing


def get_app(name: str) -> App:
    """The app called *name*, or NotFound."""
    app = App.get_or_none(App.name == name)
    if app is None:
        raise NotFound(f"no app named {name!r}")
    return app


class AppActor(CymeActor):
    """Creates, describes and deletes apps."""

    label = "App"

    def setup_handlers(self) -> None:
        self.handlers.update(
            {
                CreateApp: self.create,
                GetApp: self.get,
                ListApps: self.list,
                DeleteApp: self.delete,
            }
        )

    def info(self, app: App) -> AppInfo:
        assert self.config is not None
        return views.app_info(app, self.config)

    def create(self, msg: CreateApp, sender: Any) -> AppInfo:
        name = names.app_name(msg.name)
        fields = {
            "broker": broker_url.check(msg.broker) if msg.broker else None,
            "backend": broker_url.check_backend(msg.backend) if msg.backend else None,
        }
        with writing():
            app, created = App.get_or_create(name=name, defaults=fields)
            if not created and (app.broker, app.backend) != (fields["broker"], fields["backend"]):
                app.broker, app.backend = fields["broker"], fields["backend"]
                app.save()
        return self.info(app)

    def get(self, msg: GetApp, sender: Any) -> AppInfo:
        return self.info(get_app(names.app_name(msg.name)))

    def list(self, msg: ListApps, sender: Any) -> list[AppInfo]:
        return [self.info(app) for app in App.select().order_by(App.name)]

    def delete(self, msg: DeleteApp, sender: Any) -> Deleted:
        app = get_app(names.app_name(msg.name))
        with writing():
            count = Instance.select().where(Instance.app == app.name).count()
            if count:
                raise Conflict(f"app {app.name!r} still has {count} instance(s); delete them first")
            Queue.delete().where(Queue.app == app.name).execute()
            app.delete_instance()
        return Deleted("app", app.name)
