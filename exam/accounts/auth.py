"""Staff login with password and TOTP, logout, and the role check every page uses."""
from __future__ import annotations

import functools
from datetime import timedelta
from urllib.parse import urlsplit

import segno
from flask import Blueprint, abort, current_app, flash, g, redirect, render_template, request, session, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from flask_wtf import FlaskForm
from wtforms import PasswordField, StringField
from wtforms.validators import DataRequired, Length

from exam.accounts import staff as accounts
from exam.accounts.models import StaffSession
from exam.core.db import get_session, utcnow

bp = Blueprint("auth", __name__)


class LoginForm(FlaskForm):
    username = StringField(_l("Tên đăng nhập"), validators=[DataRequired(), Length(max=64)])
    password = PasswordField(_l("Mật khẩu"), validators=[DataRequired(), Length(max=256)])


class CodeForm(FlaskForm):
    code = StringField(_l("Mã xác thực"), validators=[DataRequired(), Length(max=32)],
                       render_kw={"autocomplete": "one-time-code", "inputmode": "numeric", "autofocus": True})


class StaffPrincipal:
    """What Flask-Login sees: the user of a fully authenticated StaffSession."""

    is_authenticated = True
    is_active = True
    is_anonymous = False

    def __init__(self, staff_session: StaffSession):
        self.staff_session = staff_session
        self.user = staff_session.user
        self.id = self.user.id
        self.username = self.user.username
        self.roles = self.user.role_set

    def get_id(self) -> str:
        return str(self.id)

    def has_role(self, role: str) -> bool:
        return role in self.roles


def current_staff_session() -> StaffSession | None:
    """The StaffSession named by the cookie, even one still owing its second factor."""
    if "staff_session" not in g:
        token = session.get("staff_token")
        g.staff_session = accounts.session_for_token(get_session(), token) if token else None
    return g.staff_session


def load_user_from_session(_request):
    staff_session = current_staff_session()
    if staff_session is None or not staff_session.fully_authenticated:
        return None
    g.staff_user_id = staff_session.user_id
    return StaffPrincipal(staff_session)


def role_required(*roles: str):
    """Fully signed-in staff holding any of ``roles``; others get the login page or 403."""

    def decorator(view):
        @functools.wraps(view)
        def wrapped(*args, **kwargs):
            if not current_user.is_authenticated:
                return redirect(url_for("auth.login", next=request.full_path))
            if not any(current_user.has_role(role) for role in roles):
                abort(403)
            return view(*args, **kwargs)

        wrapped.required_roles = roles  # read by the role-matrix test
        return wrapped

    return decorator


def actor() -> str:
    """The name written into audit entries for the signed-in user."""
    return current_user.username


def safe_next(target: str | None) -> str:
    # Only paths on this server: never an open redirect to another host.
    if target and target.startswith("/") and not target.startswith("//") and not urlsplit(target).netloc:
        return target
    return url_for("home.index")


@bp.route("/login", methods=["GET", "POST"])
def login():
    form = LoginForm()
    if form.validate_on_submit():
        db_session = get_session()
        outcome = accounts.start_login(
            db_session, form.username.data, form.password.data, now=utcnow(),
            remote_addr=request.remote_addr or "",
            max_failures=int(current_app.config["LOGIN_MAX_FAILURES"]),
            lockout=timedelta(minutes=int(current_app.config["LOGIN_LOCKOUT_MINUTES"])))
        db_session.commit()
        if outcome.token is None:
            if outcome.error == "locked":
                flash(_("Tài khoản tạm khóa do nhập sai nhiều lần. Vui lòng thử lại sau."), "danger")
            else:
                flash(_("Tên đăng nhập hoặc mật khẩu không đúng."), "danger")
            return render_template("auth/login.html", form=form), 401
        lang = session.get("lang")
        session.clear()  # a new session at every login
        if lang:
            session["lang"] = lang
        session["staff_token"] = outcome.token
        session["next"] = safe_next(request.args.get("next"))
        if outcome.user.needs_2fa:
            endpoint = "auth.second_factor" if outcome.user.totp_enrolled else "auth.enrol"
            return redirect(url_for(endpoint))
        return redirect(session.pop("next"))
    return render_template("auth/login.html", form=form)


@bp.route("/login/code", methods=["GET", "POST"])
def second_factor():
    staff_session = current_staff_session()
    if staff_session is None:
        return redirect(url_for("auth.login"))
    if not staff_session.user.totp_enrolled:
        return redirect(url_for("auth.enrol"))
    form = CodeForm()
    if form.validate_on_submit():
        db_session = get_session()
        accepted = accounts.pass_second_factor(db_session, staff_session, form.code.data, now=utcnow(),
                                               valid_window=int(current_app.config["TOTP_VALID_WINDOW"]))
        db_session.commit()
        if accepted:
            return redirect(session.pop("next", None) or url_for("home.index"))
        flash(_("Mã xác thực không đúng, đã hết hạn hoặc đã được dùng."), "danger")
        return render_template("auth/second_factor.html", form=form), 401
    return render_template("auth/second_factor.html", form=form)


@bp.route("/login/enrol", methods=["GET", "POST"])
def enrol():
    staff_session = current_staff_session()
    if staff_session is None:
        return redirect(url_for("auth.login"))
    user = staff_session.user
    if user.totp_enrolled:
        return redirect(url_for("auth.second_factor"))
    form = CodeForm()
    if form.validate_on_submit():
        db_session = get_session()
        codes = accounts.confirm_enrolment(db_session, staff_session, form.code.data, now=utcnow(),
                                           valid_window=int(current_app.config["TOTP_VALID_WINDOW"]))
        db_session.commit()
        if codes:
            return render_template("auth/recovery_codes.html", codes=codes,
                                   next_url=session.pop("next", None) or url_for("home.index"))
        flash(_("Mã xác thực không đúng. Kiểm tra giờ trên điện thoại rồi thử lại."), "danger")
    uri = user.provisioning_uri()
    qr_svg = segno.make(uri, micro=False).svg_data_uri(scale=5)
    return render_template("auth/enrol.html", form=form, uri=uri, secret=user.totp_secret, qr_svg=qr_svg)


@bp.route("/logout", methods=["POST"])
def logout():
    staff_session = current_staff_session()
    if staff_session is not None:
        db_session = get_session()
        accounts.end_session(db_session, staff_session, now=utcnow())
        db_session.commit()
    lang = session.get("lang")
    session.clear()
    if lang:
        session["lang"] = lang
    flash(_("Đã đăng xuất."), "info")
    return redirect(url_for("auth.login"))
