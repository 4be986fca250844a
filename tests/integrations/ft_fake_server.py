"""A local France Travail for tests: a real HTTP server on 127.0.0.1 (random port).

Implements what spie uses of FLOWS.md §3:

* ``POST {auth}/connexion/oauth2/access_token?realm=/partenaire`` (client credentials, secret in
  the body): checks realm, grant type, client id/secret and scopes; issues bearer tokens that
  expire after ``expires_in`` seconds (server clock) or when :meth:`revoke_tokens` is called.
* ``POST {api}/partenaire/rechercher-usager/v2/usagers/par-datenaissance-et-nir``: S001 + jeton
  for pairs added by :meth:`add_user`, S003 for :meth:`add_duplicate`, 403 R001 for
  :meth:`forbid_nir`, S002 otherwise.
* ``POST {api}/partenaire/orientationusager/v1/orientation`` (header ``ft-jeton-usager``):
  records each accepted orientation in :attr:`orientations`.
* ``POST`` or ``GET {api}/partenaire/orientationusager/v1/lectureOrientation``: the orientation
  set by :meth:`set_orientation` (a one-element JSON list), 204 when there is none.

Every API call checks the bearer token, its scopes and the batch agent headers. Faults can be
scripted per endpoint: :meth:`fail_next` (status, Retry-After, body) and :meth:`hang_next` (no
answer for a while, longer than the client's timeout). Every request is recorded in
:attr:`requests`.

Usage::

    with FakeFranceTravail() as ft:
        config = ft.client_config(timeout=2)
        ...
"""

from __future__ import annotations

import json
import secrets
import threading
import time
from collections import deque
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import date
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, Self
from urllib.parse import parse_qs, urlsplit

from spie.integrations.france_travail.api import (
    DEFAULT_SCOPES,
    LECTURE_ORIENTATION_PATH,
    ORIENTATION_PATH,
    ORIENTATION_SCOPES,
    RECHERCHER_USAGER_PATH,
    SEARCH_SCOPES,
    TOKEN_PATH,
    FtApiConfig,
)

TOKEN = "token"
SEARCH = "rechercher_usager"
ORIENTATION = "orientation"
READ_ORIENTATION = "lecture_orientation"
ENDPOINTS = (TOKEN, SEARCH, ORIENTATION, READ_ORIENTATION)

AUTH_PREFIX = "/auth"
API_PREFIX = "/api"
AGENT_HEADERS = ("pa-identifiant-agent", "pa-nom-agent", "pa-prenom-agent")

_ROUTES: dict[str, tuple[str, frozenset[str]]] = {
    AUTH_PREFIX + TOKEN_PATH: (TOKEN, frozenset({"POST"})),
    API_PREFIX + RECHERCHER_USAGER_PATH: (SEARCH, frozenset({"POST"})),
    API_PREFIX + ORIENTATION_PATH: (ORIENTATION, frozenset({"POST"})),
    API_PREFIX + LECTURE_ORIENTATION_PATH: (READ_ORIENTATION, frozenset({"POST", "GET"})),
}


@dataclass(frozen=True)
class RecordedRequest:
    """One request received by the fake server."""

    method: str
    path: str
    query: Mapping[str, list[str]]
    headers: Mapping[str, str]  # lower-case names
    body: bytes
    endpoint: str | None
    received_at: float

    def json(self) -> Any:
        return json.loads(self.body or b"null")

    def form(self) -> dict[str, str]:
        return {key: values[-1] for key, values in parse_qs(self.body.decode()).items()}


@dataclass(frozen=True)
class ReceivedOrientation:
    jeton: str
    parcours: str
    organisme: str
    origine: str
    headers: Mapping[str, str]


@dataclass
class _Fault:
    status: int | None = None
    body: Any = None
    retry_after: str | None = None
    hang: float | None = None
    process_after_hang: bool = False


@dataclass
class _Token:
    value: str
    scopes: frozenset[str]
    expires_at: float
    revoked: bool = False


@dataclass
class _State:
    users: dict[tuple[str, str], str] = field(default_factory=dict)
    duplicates: set[tuple[str, str]] = field(default_factory=set)
    forbidden: set[str] = field(default_factory=set)
    orientations_by_jeton: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    tokens: dict[str, _Token] = field(default_factory=dict)
    faults: dict[str, deque[_Fault]] = field(default_factory=dict)


class FakeFranceTravail:
    """The fake France Travail; starts on construction, stops with :meth:`stop` or ``with``."""

    def __init__(
        self,
        *,
        client_id: str = "spie-test-client",
        client_secret: str = "spie-test-secret",  # noqa: S107 - a test secret
        expires_in: int = 1499,
        allowed_scopes: tuple[str, ...] = DEFAULT_SCOPES,
        token_delay: float = 0.0,
    ) -> None:
        self.client_id = client_id
        self.client_secret = client_secret
        self.expires_in = expires_in
        self.allowed_scopes = frozenset(allowed_scopes)
        #: seconds the token endpoint waits before answering (to make concurrent callers pile up)
        self.token_delay = token_delay
        self.requests: list[RecordedRequest] = []
        self.orientations: list[ReceivedOrientation] = []
        self._state = _State()
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="fake-france-travail",
            daemon=True,
        )
        self._thread.start()
        self._stopped = False

    # ------------------------------------------------------------------ lifecycle

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def auth_base_url(self) -> str:
        return self.base_url + AUTH_PREFIX

    @property
    def api_base_url(self) -> str:
        return self.base_url + API_PREFIX

    def client_config(self, **overrides: Any) -> FtApiConfig:
        """An FtApiConfig pointing at this server with the right credentials."""
        values: dict[str, Any] = {
            "auth_base_url": self.auth_base_url,
            "api_base_url": self.api_base_url,
            "client_id": self.client_id,
            "client_secret": self.client_secret,
            "timeout": 5.0,
            "agent_name": "SPIE-TESTS",
            "agent_first_name": "BATCH",
        }
        values.update(overrides)
        return FtApiConfig(**values)

    def stop(self) -> None:
        if self._stopped:
            return
        self._stopped = True
        self._stopping.set()  # releases hanging handlers
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # ------------------------------------------------------------------ scripting

    def add_user(self, birth_date: date, nir15: str, jeton: str | None = None) -> str:
        """Register a person; rechercher-usager answers S001 with the returned jeton."""
        jeton = jeton or "jeton-" + secrets.token_urlsafe(24)
        with self._lock:
            self._state.users[(birth_date.isoformat(), nir15)] = jeton
        return jeton

    def add_duplicate(self, birth_date: date, nir15: str) -> None:
        """rechercher-usager answers S003 (several people) for this pair."""
        with self._lock:
            self._state.duplicates.add((birth_date.isoformat(), nir15))

    def forbid_nir(self, nir15: str) -> None:
        """rechercher-usager answers 403 R001 for this NIR."""
        with self._lock:
            self._state.forbidden.add(nir15)

    def set_orientation(self, jeton: str, orientation: Mapping[str, Any] | None) -> None:
        """What lectureOrientation returns for ``jeton`` (None: 204, no orientation)."""
        with self._lock:
            if orientation is None:
                self._state.orientations_by_jeton.pop(jeton, None)
            else:
                self._state.orientations_by_jeton[jeton] = [dict(orientation)]

    def fail_next(
        self,
        endpoint: str,
        status: int = 500,
        *,
        times: int = 1,
        retry_after: str | int | None = None,
        body: Any = None,
    ) -> None:
        """The next ``times`` calls to ``endpoint`` answer ``status`` (with Retry-After and a
        JSON ``body`` if given) without being processed."""
        self._add_faults(
            endpoint,
            times,
            _Fault(
                status=status,
                body=body,
                retry_after=None if retry_after is None else str(retry_after),
            ),
        )

    def hang_next(
        self, endpoint: str, seconds: float, *, times: int = 1, process_after: bool = False
    ) -> None:
        """The next ``times`` calls to ``endpoint`` get no answer for ``seconds``; then the
        connection is closed unprocessed, or (``process_after``) processed and answered late."""
        self._add_faults(endpoint, times, _Fault(hang=seconds, process_after_hang=process_after))

    def revoke_tokens(self) -> None:
        """Every token issued so far is refused (401) from now on."""
        with self._lock:
            for token in self._state.tokens.values():
                token.revoked = True

    def _add_faults(self, endpoint: str, times: int, fault: _Fault) -> None:
        if endpoint not in ENDPOINTS:
            raise ValueError(f"unknown endpoint {endpoint!r}, expected one of {ENDPOINTS}")
        with self._lock:
            queue = self._state.faults.setdefault(endpoint, deque())
            queue.extend(_Fault(**fault.__dict__) for _ in range(times))

    # ------------------------------------------------------------------ inspection

    def requests_to(self, endpoint: str) -> list[RecordedRequest]:
        with self._lock:
            return [request for request in self.requests if request.endpoint == endpoint]

    @property
    def token_requests(self) -> int:
        """Number of requests received by the token endpoint (whatever their outcome)."""
        return len(self.requests_to(TOKEN))

    @property
    def issued_tokens(self) -> list[str]:
        with self._lock:
            return list(self._state.tokens)

    def iter_all_text(self) -> Iterator[str]:
        """Everything received, as text (for leak checks)."""
        with self._lock:
            recorded = list(self.requests)
        for request in recorded:
            yield request.path
            yield from request.headers.values()
            yield request.body.decode("utf-8", "replace")

    # ------------------------------------------------------------------ HTTP handling

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            server_version = "FakeFranceTravail/1.0"
            disable_nagle_algorithm = True  # headers and body are separate writes: no 40 ms stalls

            def log_message(self, format: str, *args: Any) -> None:
                pass  # keep test output quiet

            def do_GET(self) -> None:
                fake._handle(self, "GET")

            def do_POST(self) -> None:
                fake._handle(self, "POST")

        return Handler

    def _handle(self, handler: BaseHTTPRequestHandler, method: str) -> None:
        split = urlsplit(handler.path)
        length = int(handler.headers.get("Content-Length") or 0)
        body = handler.rfile.read(length) if length else b""
        route = _ROUTES.get(split.path)
        endpoint = route[0] if route else None
        headers = {name.lower(): value for name, value in handler.headers.items()}
        with self._lock:
            self.requests.append(
                RecordedRequest(
                    method=method,
                    path=split.path,
                    query=parse_qs(split.query),
                    headers=headers,
                    body=body,
                    endpoint=endpoint,
                    received_at=time.monotonic(),
                )
            )
            queue = self._state.faults.get(endpoint or "")
            fault = queue.popleft() if queue else None

        if route is None:
            self._send(handler, 404, {"message": "no such endpoint"})
            return
        if method not in route[1]:
            self._send(handler, 405, {"message": "method not allowed"})
            return
        if fault is not None:
            if fault.hang is not None:
                self._stopping.wait(fault.hang)
                if not fault.process_after_hang:
                    handler.close_connection = True
                    return
            else:
                extra = {"Retry-After": fault.retry_after} if fault.retry_after else {}
                payload = fault.body if fault.body is not None else {"message": "scripted fault"}
                self._send(handler, fault.status or 500, payload, extra)
                return

        assert endpoint is not None
        status, payload = getattr(self, f"_do_{endpoint}")(method, split.query, headers, body)
        self._send(handler, status, payload)

    @staticmethod
    def _send(
        handler: BaseHTTPRequestHandler,
        status: int,
        payload: Any,
        extra_headers: Mapping[str, str] | None = None,
    ) -> None:
        data = b"" if payload is None else json.dumps(payload).encode()
        try:
            handler.send_response(status)
            if data:
                handler.send_header("Content-Type", "application/json")
            handler.send_header("Content-Length", str(len(data)))
            for name, value in (extra_headers or {}).items():
                handler.send_header(name, value)
            handler.end_headers()
            if data:
                handler.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):  # the client gave up (timeout)
            handler.close_connection = True

    # -- endpoints: each returns (status, JSON payload or None)

    def _do_token(
        self, method: str, query: str, headers: Mapping[str, str], body: bytes
    ) -> tuple[int, Any]:
        if parse_qs(query).get("realm") != ["/partenaire"]:
            return 400, {"error": "invalid_request", "error_description": "realm"}
        form = {key: values[-1] for key, values in parse_qs(body.decode()).items()}
        if form.get("grant_type") != "client_credentials":
            return 400, {"error": "unsupported_grant_type"}
        if form.get("client_id") != self.client_id or not secrets.compare_digest(
            form.get("client_secret", ""), self.client_secret
        ):
            return 401, {"error": "invalid_client"}
        scopes = frozenset(form.get("scope", "").split())
        if not scopes or not scopes <= self.allowed_scopes:
            return 400, {"error": "invalid_scope"}
        if self.token_delay:
            self._stopping.wait(self.token_delay)
        value = "at-" + secrets.token_urlsafe(24)
        with self._lock:
            self._state.tokens[value] = _Token(value, scopes, time.monotonic() + self.expires_in)
        return 200, {
            "access_token": value,
            "token_type": "Bearer",
            "expires_in": self.expires_in,
            "scope": " ".join(sorted(scopes)),
        }

    def _check_call(
        self, headers: Mapping[str, str], required_scopes: tuple[str, ...]
    ) -> tuple[int, Any] | None:
        authorization = headers.get("authorization", "")
        if not authorization.startswith("Bearer "):
            return 401, {"error": "invalid_token", "error_description": "no bearer token"}
        with self._lock:
            token = self._state.tokens.get(authorization.removeprefix("Bearer "))
        if token is None or token.revoked or time.monotonic() >= token.expires_at:
            return 401, {"error": "invalid_token"}
        if not set(required_scopes) <= token.scopes:
            return 403, {"error": "insufficient_scope"}
        missing = [name for name in AGENT_HEADERS if not headers.get(name)]
        if missing:
            return 400, {"codeRetour": "E400", "message": f"missing {', '.join(missing)}"}
        return None

    def _do_rechercher_usager(
        self, method: str, query: str, headers: Mapping[str, str], body: bytes
    ) -> tuple[int, Any]:
        refused = self._check_call(headers, SEARCH_SCOPES)
        if refused:
            return refused
        try:
            data = json.loads(body)
            birth = date.fromisoformat(data["dateNaissance"]).isoformat()
            nir = data["nir"]
        except (ValueError, KeyError, TypeError):
            return 400, {"codeRetour": "E400", "message": "dateNaissance and nir required"}
        if not isinstance(nir, str) or len(nir) != 15:
            return 400, {"codeRetour": "E400", "message": "nir must have 15 characters"}
        with self._lock:
            if nir in self._state.forbidden:
                return 403, {"codeRetour": "R001", "message": "Accès refusé à cet usager"}
            if (birth, nir) in self._state.duplicates:
                return 200, {"codeRetour": "S003", "message": "Plusieurs usagers trouvés"}
            jeton = self._state.users.get((birth, nir))
        if jeton is None:
            return 200, {"codeRetour": "S002", "message": "Aucun usager trouvé"}
        return 200, {"codeRetour": "S001", "message": "Usager trouvé", "jetonUsager": jeton}

    def _known_jeton(self, headers: Mapping[str, str]) -> str | None:
        jeton = headers.get("ft-jeton-usager")
        with self._lock:
            known = jeton is not None and jeton in self._state.users.values()
        return jeton if known else None

    def _do_orientation(
        self, method: str, query: str, headers: Mapping[str, str], body: bytes
    ) -> tuple[int, Any]:
        refused = self._check_call(headers, ORIENTATION_SCOPES)
        if refused:
            return refused
        jeton = self._known_jeton(headers)
        if jeton is None:
            return 400, {"codeRetour": "E401", "message": "ft-jeton-usager absent ou invalide"}
        try:
            data = json.loads(body)
            parcours, organisme, origine = data["parcours"], data["organisme"], data["origine"]
        except (ValueError, KeyError, TypeError):
            return 400, {"codeRetour": "E400", "message": "origine, parcours, organisme required"}
        if parcours not in ("PED", "PSO", "PSP") or not organisme or not origine:
            return 400, {"codeRetour": "E400", "message": "invalid orientation"}
        with self._lock:
            self.orientations.append(
                ReceivedOrientation(jeton, parcours, organisme, origine, dict(headers))
            )
        return 201, {"codeRetour": "S001", "message": "Orientation enregistrée"}

    def _do_lecture_orientation(
        self, method: str, query: str, headers: Mapping[str, str], body: bytes
    ) -> tuple[int, Any]:
        refused = self._check_call(headers, ORIENTATION_SCOPES)
        if refused:
            return refused
        jeton = self._known_jeton(headers)
        if jeton is None:
            return 400, {"codeRetour": "E401", "message": "ft-jeton-usager absent ou invalide"}
        with self._lock:
            orientations = self._state.orientations_by_jeton.get(jeton)
        if not orientations:
            return 204, None
        return 200, orientations
