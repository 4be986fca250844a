"""Server-rendered pages: agent login form, home, health check."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, current_app, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from sqlalchemy import text

from spie.agents.models import Role
from spie.auth.access import current_agent_or_none, public, roles_required
from spie.auth.services import authenticate, end_session, start_session
from spie.db import db
from spie.extensions import limiter

bp = Blueprint("web", __name__, template_folder="../templates")


def _login_limit() -> str:
    return str(current_app.config["SPIE_LOGIN_RATE_LIMIT"])


@bp.route("/healthz")
@public
def health() -> ResponseReturnValue:
    db.session.execute(text("SELECT 1"))
    return {"status": "ok"}


@bp.route("/")
@public
def home() -> ResponseReturnValue:
    return render_template("home.html", agent=current_agent_or_none())


def _safe_next(target: str | None) -> str:
    # Only same-site relative paths: no open redirect through ?next=.
    if target and target.startswith("/") and not target.startswith("//"):
        return target
    return url_for("web.home")


@bp.route("/login", methods=["GET", "POST"])
@public
@limiter.limit(_login_limit, methods=["POST"])
def login() -> ResponseReturnValue:
    error: str | None = None
    if request.method == "POST":
        agent = authenticate(request.form.get("email", ""), request.form.get("password", ""))
        if agent is not None:
            start_session(agent)
            return redirect(_safe_next(request.args.get("next")))
        db.session.commit()  # keep the failed-login audit record
        error = "Adresse ou mot de passe incorrect."
    status = 401 if error else 200
    context: dict[str, Any] = {"error": error}
    return render_template("login.html", **context), status


@bp.route("/logout", methods=["POST"])
@roles_required(*Role)
def logout() -> ResponseReturnValue:
    end_session(current_agent_or_none())
    return redirect(url_for("web.login"))
