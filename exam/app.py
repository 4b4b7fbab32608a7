"""create_app(): settings, database, the audit key, languages, CSRF, login, every area's blueprints and commands.

It lives here, not in ``exam/__init__.py``, so that it can import every area at the top: importing any module
of the project runs the package's ``__init__`` first, and an ``__init__`` that imported the areas would make
each of them import itself half-built.
"""
from __future__ import annotations

from flask import Flask, current_app, g, render_template, session
from flask_wtf.csrf import CSRFError
from werkzeug.middleware.proxy_fix import ProxyFix

from exam import cli, home
from exam.accounts import auth
from exam.audit import chain as audit
from exam.audit import views as audit_views
from exam.core import config, db
from exam.core.config import LANGUAGE_NAMES
from exam.core.extensions import babel, bootstrap, csrf, login_manager
from exam.core.headers import SECURITY_HEADERS
from exam.grading import views as grading_views
from exam.merit import views as merit_views
from exam.room import api as room_api
from exam.room import views as room_views
from exam.room.lane import RoomLane
from exam.setup import views as setup_views
from proctor import views as proctor_views
from question_bank import views as bank_views


def create_app(test_config: dict | None = None, instance_path: str | None = None) -> Flask:
    app = Flask(__name__, instance_relative_config=True, instance_path=instance_path,
                template_folder="../templates", static_folder="../static")
    config.configure(app, test_config)
    app.wsgi_app = RoomLane(app, app.wsgi_app, SECURITY_HEADERS)  # inside ProxyFix: it sees the lab machine's address
    if app.config["PROXY_HOPS"]:
        hops = int(app.config["PROXY_HOPS"])
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops, x_host=hops)
    db.init_app(app)
    configure_audit(app)
    configure_i18n(app)
    csrf.init_app(app)
    app.config.setdefault("BOOTSTRAP_SERVE_LOCAL", True)
    bootstrap.init_app(app)
    configure_login(app)
    register_blueprints(app)
    register_cli(app)
    configure_errors(app)
    return app


def configure_audit(app: Flask) -> None:
    key = audit.SigningKey.load_or_create(app.config["AUDIT_SIGNING_KEY_FILE"])
    app.extensions["audit_key"] = key
    audit.install_checkpointing(app.extensions["exam_db"].sessionmaker, key, app.config["AUDIT_CHECKPOINT_FILE"])


def select_locale() -> str:
    chosen = session.get("lang")
    if chosen in LANGUAGE_NAMES:
        return chosen
    # The installation's default (Vietnamese unless configured), not the browser's:
    # lab machines often run an English Windows.
    default = current_app.config["BABEL_DEFAULT_LOCALE"]
    return default if default in LANGUAGE_NAMES else "vi"


def configure_i18n(app: Flask) -> None:
    babel.init_app(app, locale_selector=select_locale,
                   default_translation_directories="../translations")

    @app.template_filter("field_errors")
    def field_errors(errors):
        """A field's own messages as text (translated lazily or not); nested rows' errors are theirs to show."""
        return [str(message) for message in errors if not isinstance(message, (dict, list, tuple))]

    @app.context_processor
    def language_choices():
        return {"LANGUAGE_NAMES": LANGUAGE_NAMES, "current_language": select_locale()}


def configure_login(app: Flask) -> None:
    login_manager.init_app(app)
    login_manager.login_view = "auth.login"
    login_manager.session_protection = None  # our StaffSession row is the real session
    login_manager.request_loader(auth.load_user_from_session)


def register_blueprints(app: Flask) -> None:
    for area in (home, auth, bank_views, audit_views, setup_views, room_api, room_views, proctor_views,
                 grading_views, merit_views):
        app.register_blueprint(area.bp)


def register_cli(app: Flask) -> None:
    cli.register(app)


def configure_errors(app: Flask) -> None:
    def page(code: int, error=None):
        return render_template("error.html", code=code, error=error), code

    for code in (400, 403, 404, 405, 413, 500):
        app.register_error_handler(code, lambda e, code=code: page(code, e))
    app.register_error_handler(CSRFError, lambda e: page(400, e))

    @app.after_request
    def security_headers(response):
        for name, value in SECURITY_HEADERS:
            response.headers.setdefault(name, value)
        if getattr(g, "staff_user_id", None) is not None:
            # Staff pages hold bank content and keys: nothing stays in a shared machine's cache.
            response.headers["Cache-Control"] = "no-store"
        return response
