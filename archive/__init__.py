"""Constancia: an archive of security operations, the people harmed in them, and the sources."""

from __future__ import annotations

import os
from typing import Any

from flask import Flask
from flask.json.provider import DefaultJSONProvider

from . import database  # noqa: F401  (registers the engine settings)
from .config import Defaults
from .extensions import db, migrate


def create_app(config: dict[str, Any] | None = None) -> Flask:
    """Build the app: defaults, then instance/config.py, then FLASK_* variables, then `config`."""
    app = Flask(
        __name__,
        instance_relative_config=True,
        template_folder="../templates",
        static_folder="../static",
    )
    app.config.from_object(Defaults)
    app.config.from_pyfile("config.py", silent=True)
    app.config.from_prefixed_env()
    if config:
        app.config.update(config)

    instance = app.instance_path
    app.config.setdefault(
        "SQLALCHEMY_DATABASE_URI", f"sqlite:///{os.path.join(instance, 'constancia.sqlite3')}"
    )
    app.config.setdefault("FILES_DIR", os.path.join(instance, "files"))
    app.config.setdefault("SEARCH_INDEX_DIR", os.path.join(instance, "search"))
    # Room for the multipart envelope around the largest accepted file. Flask's own default
    # is None (no limit), so setdefault would never apply: fill it in when unset.
    if app.config.get("MAX_CONTENT_LENGTH") is None:
        app.config["MAX_CONTENT_LENGTH"] = app.config["FILES_MAX_BYTES"] + 1024 * 1024

    if not app.config.get("SECRET_KEY") and not (app.debug or app.testing):
        raise RuntimeError(
            "No SECRET_KEY is set. Set FLASK_SECRET_KEY, or put SECRET_KEY in "
            f"{os.path.join(instance, 'config.py')} (`make run` writes one there)."
        )

    # Keep fields in the schemas' order (id first) rather than sorted.
    app.json = HTMLSafeJSONProvider(app)
    app.json.sort_keys = False
    # Accented letters as they are, in UTF-8 ("Operación"); <, > and & still escaped.
    app.json.ensure_ascii = False

    db.init_app(app)
    migrate.init_app(app, db, directory=os.path.join(app.root_path, "..", "migrations"))

    from . import access, api, cli, web

    access.init_app(app)
    api.init_app(app)
    cli.init_app(app)
    web.init_app(app)
    return app


class HTMLSafeJSONProvider(DefaultJSONProvider):
    """JSON with <, > and & written as \\u escapes: the same data to any JSON parser, but a
    plain-text field holding markup cannot turn into markup if a response is ever read as
    HTML (a misconfigured proxy, an old browser sniffing types, a page embedding it)."""

    ESCAPES = str.maketrans({"<": "\\u003c", ">": "\\u003e", "&": "\\u0026"})

    def dumps(self, obj: Any, **kwargs: Any) -> str:
        # These three characters only occur inside JSON strings, where the escapes are exact.
        return super().dumps(obj, **kwargs).translate(self.ESCAPES)
