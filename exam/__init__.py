"""The exam system: create_app() wires settings, database, login, CSRF, languages and blueprints."""
from __future__ import annotations

from flask import Flask, current_app, g, render_template, session

from exam.core import config, db
from exam.core.extensions import babel, bootstrap, csrf, login_manager
from exam.room.lane import RoomLane

LANGUAGE_NAMES = {"vi": "Tiếng Việt", "en": "English"}
# On every answer (set unless a view set its own).
SECURITY_HEADERS = (
    ("X-Content-Type-Options", "nosniff"),
    ("X-Frame-Options", "DENY"),
    ("Referrer-Policy", "same-origin"),
    ("Content-Security-Policy",
     "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; frame-ancestors 'none'"),
)


def create_app(test_config: dict | None = None, instance_path: str | None = None) -> Flask:
    app = Flask(__name__, instance_relative_config=True, instance_path=instance_path,
                template_folder="../templates", static_folder="../static")
    config.configure(app, test_config)
    app.wsgi_app = RoomLane(app, app.wsgi_app, SECURITY_HEADERS)  # inside ProxyFix: it sees the lab machine's address
    if app.config["PROXY_HOPS"]:
        from werkzeug.middleware.proxy_fix import ProxyFix

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
    from exam.audit import chain as audit

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
    from exam.accounts import auth

    login_manager.init_app(app)
    login_manager.login_view = "auth.login"
    login_manager.session_protection = None  # our StaffSession row is the real session
    login_manager.request_loader(auth.load_user_from_session)


def register_blueprints(app: Flask) -> None:
    from exam.accounts.auth import bp as auth_bp
    from exam.audit.views import bp as auditor_bp
    from exam.home import bp as home_bp
    from exam.room.api import bp as api_bp
    from exam.room.views import bp as exam_room_bp
    from exam.setup.views import bp as board_bp
    from question_bank.views import bp as bank_bp

    app.register_blueprint(home_bp)
    app.register_blueprint(auth_bp)
    app.register_blueprint(bank_bp)
    app.register_blueprint(auditor_bp)
    app.register_blueprint(board_bp)
    app.register_blueprint(api_bp)
    app.register_blueprint(exam_room_bp)
    app.register_blueprint(__import__("proctor.views", fromlist=["bp"]).bp)  # the proctor console (/proctor)
    app.register_blueprint(__import__("exam.grading.views", fromlist=["bp"]).bp)  # results (/board/results)
    app.register_blueprint(__import__("exam.merit.views", fromlist=["bp"]).bp)  # merit lists (/board/merit)


def register_cli(app: Flask) -> None:
    from exam.cli import register

    register(app)


def configure_errors(app: Flask) -> None:
    from flask_wtf.csrf import CSRFError

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
