"""Authentication for API clients: session login, personal API tokens, who am I."""

from __future__ import annotations

import datetime as dt
from typing import Any

import marshmallow as ma
from flask import current_app
from flask_smorest import Blueprint
from flask_wtf.csrf import generate_csrf
from sqlalchemy import select

from spie.agents.models import Role
from spie.agents.schemas import AgentSchema
from spie.auth.access import current_agent, current_agent_or_none, public, roles_required
from spie.auth.login import create_api_token
from spie.auth.models import ApiToken
from spie.auth.services import authenticate, end_session, start_session
from spie.db import db, utcnow
from spie.errors import NotFound, Unauthorized
from spie.extensions import limiter

blp = Blueprint("auth_api", __name__, url_prefix="/auth", description="Authentification")


def _login_limit() -> str:
    return str(current_app.config["SPIE_LOGIN_RATE_LIMIT"])


class LoginArgs(ma.Schema):
    email = ma.fields.String(required=True, validate=ma.validate.Length(max=254))
    password = ma.fields.String(required=True, validate=ma.validate.Length(max=200))


class TokenWithPasswordArgs(LoginArgs):
    name = ma.fields.String(load_default="api", validate=ma.validate.Length(min=1, max=100))


class TokenArgs(ma.Schema):
    name = ma.fields.String(required=True, validate=ma.validate.Length(min=1, max=100))
    ttl_hours = ma.fields.Integer(validate=ma.validate.Range(min=1, max=24 * 365))


class TokenSchema(ma.Schema):
    id = ma.fields.Integer()
    name = ma.fields.String()
    prefix = ma.fields.String()
    created_at = ma.fields.AwareDateTime()
    expires_at = ma.fields.AwareDateTime()
    revoked_at = ma.fields.AwareDateTime(allow_none=True)
    last_used_at = ma.fields.AwareDateTime(allow_none=True)


class NewTokenSchema(TokenSchema):
    token = ma.fields.String(metadata={"description": "Shown once; only a digest is stored."})


def _with_value(token: ApiToken, value: str) -> dict[str, Any]:
    """The token's attributes plus its value, for ``NewTokenSchema`` to dump (once)."""
    return {**{name: getattr(token, name) for name in TokenSchema().fields}, "token": value}


class CsrfSchema(ma.Schema):
    csrf_token = ma.fields.String()


class SessionSchema(ma.Schema):
    agent = ma.fields.Nested(AgentSchema)
    csrf_token = ma.fields.String()


@blp.route("/csrf", methods=["GET"])
@public
@blp.response(200, CsrfSchema)
def csrf_token() -> dict[str, str]:
    """A CSRF token for cookie-authenticated writes (send it as ``X-CSRFToken``)."""
    return {"csrf_token": generate_csrf()}


@blp.route("/login", methods=["POST"])
@public
@limiter.limit(_login_limit)
@blp.arguments(LoginArgs)
@blp.response(200, SessionSchema)
def login(args: dict[str, Any]) -> dict[str, Any]:
    """Open a session (cookie). Rate limited per client address."""
    agent = authenticate(args["email"], args["password"])
    if agent is None:
        db.session.commit()  # keep the failed-login audit record although we answer 401
        raise Unauthorized("Adresse ou mot de passe incorrect.", code="bad_credentials")
    start_session(agent)
    return {"agent": agent, "csrf_token": generate_csrf()}


@blp.route("/token", methods=["POST"])
@public
@limiter.limit(_login_limit)
@blp.arguments(TokenWithPasswordArgs)
@blp.response(201, NewTokenSchema)
def create_token_with_password(args: dict[str, Any]) -> Any:
    """Exchange credentials for a personal Bearer token (scripts and API clients)."""
    agent = authenticate(args["email"], args["password"])
    if agent is None:
        db.session.commit()
        raise Unauthorized("Adresse ou mot de passe incorrect.", code="bad_credentials")
    ttl = dt.timedelta(hours=current_app.config["SPIE_API_TOKEN_TTL_HOURS"])
    token, value = create_api_token(agent, args["name"], ttl)
    return _with_value(token, value), 201


@blp.route("/logout", methods=["POST"])
@roles_required(*Role)
@blp.response(204)
def logout() -> None:
    end_session(current_agent_or_none())


@blp.route("/me", methods=["GET"])
@roles_required(*Role)
@blp.response(200, AgentSchema)
def me() -> Any:
    return current_agent()


@blp.route("/tokens", methods=["GET"])
@roles_required(*Role)
@blp.response(200, TokenSchema(many=True))
def list_tokens() -> Any:
    return db.session.scalars(
        select(ApiToken).where(ApiToken.agent_id == current_agent().id).order_by(ApiToken.id)
    ).all()


@blp.route("/tokens", methods=["POST"])
@roles_required(*Role)
@blp.arguments(TokenArgs)
@blp.response(201, NewTokenSchema)
def create_token(args: dict[str, Any]) -> Any:
    hours = args.get("ttl_hours") or current_app.config["SPIE_API_TOKEN_TTL_HOURS"]
    token, value = create_api_token(current_agent(), args["name"], dt.timedelta(hours=hours))
    return _with_value(token, value), 201


@blp.route("/tokens/<int:token_id>", methods=["DELETE"])
@roles_required(*Role)
@blp.response(204)
def revoke_token(token_id: int) -> None:
    token = db.session.scalar(
        select(ApiToken).where(ApiToken.id == token_id, ApiToken.agent_id == current_agent().id)
    )
    if token is None:
        raise NotFound(f"Jeton {token_id} introuvable.")
    token.revoked_at = token.revoked_at or utcnow()
