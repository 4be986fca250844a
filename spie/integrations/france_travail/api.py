"""Client of the France Travail partner APIs (FLOWS.md §3).

* OAuth2 client credentials through authlib's ``OAuth2Session`` (``client_secret_post``) on
  ``{auth}/connexion/oauth2/access_token?realm=/partenaire``. The access token is cached and
  reused until ``token_expiry_margin`` seconds before it expires; it is fetched by one thread at a
  time (concurrent callers wait on a lock and reuse the fresh token) and fetched again when the
  API answers 401 (the call is then replayed once: a 401 means the call was not processed).
* **Rechercher usager v2** (NIR + birth date → ``jetonUsager``), **orientation usager v1** (send a
  decided orientation, read France Travail's own).
* Every call carries the batch agent headers, has a timeout, and is logged (method, path, status,
  duration) **without personal data**: no NIR, birth date, jeton, token, secret or body ever goes
  to the log nor into an exception message.
* Failures are typed: :class:`FtRetryableError` (429, 408, 5xx, connection errors, timeouts;
  ``retry_after`` from the Retry-After header) versus :class:`FtPermanentError` (other 4xx,
  ``R001``, malformed answers, invalid arguments). The caller (an rq job) retries only the first.

This module is a pure adapter: no database, no Flask. Domain code should depend on the
:class:`FranceTravailGateway` protocol, implemented by :class:`FranceTravailClient`.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from email.utils import parsedate_to_datetime
from enum import StrEnum
from types import TracebackType
from typing import Any, Final, Literal, Protocol, Self, runtime_checkable

import requests
import requests.auth
from authlib.integrations.requests_client import OAuth2Session
from authlib.integrations.requests_client import OAuthError as _AuthlibOAuthError

from spie.common.nir import is_valid_nir

__all__ = [
    "DEFAULT_SCOPES",
    "LECTURE_ORIENTATION_PATH",
    "ORIENTATION_PATH",
    "PARCOURS",
    "RECHERCHER_USAGER_PATH",
    "TOKEN_PATH",
    "FranceTravailClient",
    "FranceTravailGateway",
    "FtApiConfig",
    "FtApiError",
    "FtCriterion",
    "FtForbiddenError",
    "FtInvalidRequestError",
    "FtOrientation",
    "FtPermanentError",
    "FtRetryableError",
    "OrientationSent",
    "Parcours",
    "SearchOutcome",
    "SearchResult",
]

logger = logging.getLogger(__name__)

TOKEN_PATH: Final = "/connexion/oauth2/access_token"  # noqa: S105 - a URL path
RECHERCHER_USAGER_PATH: Final = "/partenaire/rechercher-usager/v2/usagers/par-datenaissance-et-nir"
ORIENTATION_PATH: Final = "/partenaire/orientationusager/v1/orientation"
LECTURE_ORIENTATION_PATH: Final = "/partenaire/orientationusager/v1/lectureOrientation"

SEARCH_SCOPES: Final = ("api_rechercher-usagerv2", "rechercheusager", "profil_accedant")
ORIENTATION_SCOPES: Final = ("api_orientationusagerv1", "orientationusager")
DEFAULT_SCOPES: Final = SEARCH_SCOPES + ORIENTATION_SCOPES

Parcours = Literal["PED", "PSO", "PSP"]
PARCOURS: Final = ("PED", "PSO", "PSP")

_DEFAULT_TOKEN_LIFETIME: Final = 300.0  # when the token answer has no usable expires_in
_MAX_CODE_LENGTH: Final = 32


# --------------------------------------------------------------------------- configuration


@dataclass(frozen=True)
class FtApiConfig:
    """Settings of the France Travail client.

    ``timeout`` (seconds) applies to connecting and to each read of every request, token
    included. ``token_expiry_margin`` (seconds): a token is renewed that long before its
    ``expires_in`` (never more than half its lifetime). ``read_orientation_method``: FLOWS.md
    says POST; some published integrations call ``lectureOrientation`` with GET.
    """

    auth_base_url: str
    api_base_url: str
    client_id: str
    client_secret: str = field(repr=False)
    scopes: tuple[str, ...] = DEFAULT_SCOPES
    timeout: float = 10.0
    agent_id: str = "BATCH"
    agent_name: str = "SPIE"
    agent_first_name: str = "BATCH"
    realm: str = "/partenaire"
    token_expiry_margin: float = 60.0
    read_orientation_method: Literal["POST", "GET"] = "POST"
    verify_tls: bool = True

    @property
    def token_url(self) -> str:
        return f"{self.auth_base_url.rstrip('/')}{TOKEN_PATH}?realm={self.realm}"

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, prefix: str = "SPIE_FT_") -> Self:
        """Build from ``SPIE_FT_AUTH_BASE_URL``, ``SPIE_FT_API_BASE_URL``,
        ``SPIE_FT_CLIENT_ID``, ``SPIE_FT_CLIENT_SECRET`` (required) and the optional
        ``SPIE_FT_SCOPES`` (space-separated), ``SPIE_FT_TIMEOUT``, ``SPIE_FT_AGENT_ID``,
        ``SPIE_FT_AGENT_NAME``, ``SPIE_FT_AGENT_FIRST_NAME``, ``SPIE_FT_TOKEN_EXPIRY_MARGIN``,
        ``SPIE_FT_READ_ORIENTATION_METHOD``. Raises KeyError naming a missing variable."""
        env = os.environ if environ is None else environ

        def required(name: str) -> str:
            value = env.get(prefix + name, "").strip()
            if not value:
                raise KeyError(f"{prefix}{name} is not set")
            return value

        method = env.get(prefix + "READ_ORIENTATION_METHOD", "POST").strip().upper()
        if method not in ("POST", "GET"):
            raise ValueError(f"{prefix}READ_ORIENTATION_METHOD must be POST or GET")
        scopes = env.get(prefix + "SCOPES", "").split()
        return cls(
            auth_base_url=required("AUTH_BASE_URL"),
            api_base_url=required("API_BASE_URL"),
            client_id=required("CLIENT_ID"),
            client_secret=required("CLIENT_SECRET"),
            scopes=tuple(scopes) or DEFAULT_SCOPES,
            timeout=float(env.get(prefix + "TIMEOUT", "10")),
            agent_id=env.get(prefix + "AGENT_ID", "BATCH"),
            agent_name=env.get(prefix + "AGENT_NAME", "SPIE"),
            agent_first_name=env.get(prefix + "AGENT_FIRST_NAME", "BATCH"),
            token_expiry_margin=float(env.get(prefix + "TOKEN_EXPIRY_MARGIN", "60")),
            read_orientation_method="GET" if method == "GET" else "POST",
        )


# --------------------------------------------------------------------------- results


class SearchOutcome(StrEnum):
    FOUND = "found"  # S001: one person, jeton given
    NOT_FOUND = "not_found"  # S002
    SEVERAL = "several"  # S003: several people match, none chosen


@dataclass(frozen=True)
class SearchResult:
    """Answer of *rechercher usager*. ``jeton`` is set only when ``outcome`` is FOUND; it is
    hidden from ``repr`` (it identifies a person for France Travail)."""

    outcome: SearchOutcome
    code_retour: str
    jeton: str | None = field(default=None, repr=False)

    @property
    def found(self) -> bool:
        return self.outcome is SearchOutcome.FOUND


@dataclass(frozen=True)
class OrientationSent:
    """Acknowledgement of a sent orientation: HTTP status and the ``codeRetour`` if any."""

    status_code: int
    code_retour: str | None = None


@dataclass(frozen=True)
class FtCriterion:
    """One orientation criterion read from France Travail (``criteres_orientation``)."""

    name: str
    value: str | bool | int | float | None


@dataclass(frozen=True)
class FtOrientation:
    """France Travail's own orientation of a person (``lectureOrientation``).

    ``criteria`` may include sensitive data (health, housing...): never log it. ``raw`` is the
    whole object as received, for fields not mapped here.
    """

    parcours: str | None
    structure: str | None
    statut: str | None
    date_entree_parcours: date | None
    criteria: tuple[FtCriterion, ...] = field(default=(), repr=False)
    organisme: str | None = None
    etat: str | None = None
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False, hash=False)


# --------------------------------------------------------------------------- errors


class FtApiError(Exception):
    """Base of the client's errors. ``code`` is stable (``http_500``, ``timeout``,
    ``connection_error``, ``R001``, ``unexpected_response``...), ``endpoint`` the short name of
    the call (``token``, ``rechercher_usager``, ``orientation``, ``lecture_orientation``),
    ``status`` the HTTP status when there was an answer. Messages hold no personal data."""

    retryable: bool = False

    def __init__(
        self, code: str, message: str, *, endpoint: str, status: int | None = None
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.endpoint = endpoint
        self.status = status

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(code={self.code!r}, endpoint={self.endpoint!r}, "
            f"status={self.status!r})"
        )


class FtRetryableError(FtApiError):
    """Worth retrying later: 429, 408, 5xx, connection error, timeout.

    ``retry_after``: seconds asked by the server (Retry-After), else None. ``maybe_applied``: the
    request may have reached France Travail and been applied (timeout while waiting for the
    answer, 5xx): retrying a *send* may then duplicate it on their side.
    """

    retryable = True

    def __init__(
        self,
        code: str,
        message: str,
        *,
        endpoint: str,
        status: int | None = None,
        retry_after: float | None = None,
        maybe_applied: bool = False,
    ) -> None:
        super().__init__(code, message, endpoint=endpoint, status=status)
        self.retry_after = retry_after
        self.maybe_applied = maybe_applied


class FtPermanentError(FtApiError):
    """Not worth retrying as is: other 4xx, refused access, malformed answer."""


class FtForbiddenError(FtPermanentError):
    """``R001``: the partner is not allowed to see this person (HTTP 403)."""


class FtInvalidRequestError(FtPermanentError, ValueError):
    """The arguments are invalid; nothing was sent."""


# --------------------------------------------------------------------------- gateway protocol


@runtime_checkable
class FranceTravailGateway(Protocol):
    """What the domain needs from France Travail (implemented by FranceTravailClient and by
    test doubles)."""

    def search_user(self, birth_date: date, nir15: str) -> SearchResult: ...

    def send_orientation(
        self, jeton: str, parcours: Parcours, organisme: str, origine: str
    ) -> OrientationSent: ...

    def read_orientation(self, jeton: str) -> FtOrientation | None: ...


# --------------------------------------------------------------------------- client


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds from a Retry-After header (delta-seconds or HTTP-date); None if absent/invalid."""
    if value is None:
        return None
    value = value.strip()
    if not value:
        return None
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    current = now or datetime.now(UTC)
    return max(0.0, (when - current).total_seconds())


def _safe_code(value: object) -> str | None:
    """A ``codeRetour`` fit for logs and messages (short, alphanumeric), else None."""
    if (
        isinstance(value, str)
        and 0 < len(value) <= _MAX_CODE_LENGTH
        and value.isascii()
        and value.replace("_", "").replace("-", "").isalnum()
    ):
        return value
    return None


def _json_or_none(response: requests.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return None


def _code_retour(response: requests.Response) -> str | None:
    data = _json_or_none(response)
    if isinstance(data, dict):
        return _safe_code(data.get("codeRetour"))
    return None


def _oauth_error(response: requests.Response) -> str | None:
    data = _json_or_none(response)
    if isinstance(data, dict):
        return _safe_code(data.get("error"))
    return None


class _BearerAuth(requests.auth.AuthBase):
    """Sets the bearer token; passing an auth object also keeps requests from applying
    credentials found in a ``.netrc`` file."""

    def __init__(self, token: str) -> None:
        self._token = token

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        request.headers["Authorization"] = f"Bearer {self._token}"
        return request


class FranceTravailClient:
    """France Travail partner API client; thread-safe (one instance can serve a worker's
    threads). ``clock`` (monotonic seconds) can be replaced in tests to age the token."""

    def __init__(
        self,
        config: FtApiConfig,
        *,
        session: OAuth2Session | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.config = config
        self._clock = clock
        self._session = session or OAuth2Session(
            client_id=config.client_id,
            client_secret=config.client_secret,
            token_endpoint_auth_method="client_secret_post",  # noqa: S106 - a method name
            scope=" ".join(config.scopes),
            token_endpoint=config.token_url,
            grant_type="client_credentials",
            default_timeout=config.timeout,
        )
        self._session.verify = config.verify_tls
        self._session.register_compliance_hook("access_token_response", self._on_token_response)
        self._api_base = config.api_base_url.rstrip("/")
        self._lock = threading.Lock()
        self._token: str | None = None
        self._token_valid_until = 0.0
        self._token_response: requests.Response | None = None
        self.token_fetches = 0

    # -- lifecycle

    def close(self) -> None:
        self._session.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- public API

    def search_user(self, birth_date: date, nir15: str) -> SearchResult:
        """Find a person by birth date and 15-character NIR (key included and valid).

        S001 → FOUND with the jeton; S002 → NOT_FOUND; S003 → SEVERAL. R001 (403) raises
        FtForbiddenError; other failures raise FtRetryableError / FtPermanentError."""
        endpoint = "rechercher_usager"
        nir = nir15.replace(" ", "").upper() if isinstance(nir15, str) else ""
        if len(nir) != 15 or not is_valid_nir(nir):
            raise FtInvalidRequestError(
                "invalid_nir",
                "nir15 must be 15 characters (13 + a matching 2-digit key)",
                endpoint=endpoint,
            )
        if not isinstance(birth_date, date):
            raise FtInvalidRequestError(
                "invalid_birth_date", "birth_date must be a date", endpoint=endpoint
            )
        body = {"dateNaissance": birth_date.isoformat(), "nir": nir}
        response = self._call(endpoint, "POST", RECHERCHER_USAGER_PATH, json_body=body)
        self._raise_for_status(endpoint, response)
        data = _json_or_none(response)
        code = _safe_code(data.get("codeRetour")) if isinstance(data, dict) else None
        if code == "S001":
            jeton = data.get("jetonUsager") if isinstance(data, dict) else None
            if not isinstance(jeton, str) or not jeton:
                raise FtPermanentError(
                    "unexpected_response",
                    "rechercher_usager: S001 without jetonUsager",
                    endpoint=endpoint,
                    status=response.status_code,
                )
            return SearchResult(SearchOutcome.FOUND, code, jeton)
        if code == "S002":
            return SearchResult(SearchOutcome.NOT_FOUND, code)
        if code == "S003":
            return SearchResult(SearchOutcome.SEVERAL, code)
        if code == "R001":
            raise FtForbiddenError(
                "R001",
                "rechercher_usager: access to this person refused (R001)",
                endpoint=endpoint,
                status=response.status_code,
            )
        raise FtPermanentError(
            "unexpected_response",
            f"rechercher_usager: unexpected codeRetour {code or '(none or malformed)'}",
            endpoint=endpoint,
            status=response.status_code,
        )

    def send_orientation(
        self, jeton: str, parcours: Parcours, organisme: str, origine: str
    ) -> OrientationSent:
        """Send a decided orientation (``parcours`` PED, PSO or PSP) for the person of ``jeton``.

        Not idempotent on France Travail's side as far as we know: on a FtRetryableError with
        ``maybe_applied`` the caller should check (read_orientation) before sending again."""
        endpoint = "orientation"
        self._check_jeton(endpoint, jeton)
        if parcours not in PARCOURS:
            raise FtInvalidRequestError(
                "invalid_parcours", "parcours must be PED, PSO or PSP", endpoint=endpoint
            )
        for name, value in (("organisme", organisme), ("origine", origine)):
            if not isinstance(value, str) or not value.strip():
                raise FtInvalidRequestError(
                    f"invalid_{name}", f"{name} must be a non-empty string", endpoint=endpoint
                )
        body = {"origine": origine, "parcours": parcours, "organisme": organisme}
        response = self._call(
            endpoint,
            "POST",
            ORIENTATION_PATH,
            json_body=body,
            headers={"ft-jeton-usager": jeton},
            idempotent=False,
        )
        self._raise_for_status(endpoint, response, idempotent=False)
        return OrientationSent(response.status_code, _code_retour(response))

    def read_orientation(self, jeton: str) -> FtOrientation | None:
        """France Travail's current orientation of the person, or None (HTTP 204, empty list)
        when they have none."""
        endpoint = "lecture_orientation"
        self._check_jeton(endpoint, jeton)
        method = self.config.read_orientation_method
        response = self._call(
            endpoint,
            method,
            LECTURE_ORIENTATION_PATH,
            json_body={} if method == "POST" else None,
            headers={"ft-jeton-usager": jeton},
        )
        self._raise_for_status(endpoint, response)
        if response.status_code == 204 or not response.content.strip():
            return None
        data = _json_or_none(response)
        if isinstance(data, list):
            if not data:
                return None
            data = data[0]
        if not isinstance(data, dict):
            raise FtPermanentError(
                "unexpected_response",
                "lecture_orientation: answer is not a JSON object or list",
                endpoint=endpoint,
                status=response.status_code,
            )
        return _parse_orientation(data)

    # -- token

    def _access_token(self) -> str:
        with self._lock:
            if self._token is not None and self._clock() < self._token_valid_until:
                return self._token
            return self._fetch_token_locked()

    def _invalidate(self, token: str) -> None:
        with self._lock:
            if self._token == token:  # another thread may already have replaced it
                self._token = None

    def _on_token_response(self, response: requests.Response) -> requests.Response:
        # authlib compliance hook: runs before authlib parses the answer (under self._lock).
        self._token_response = response
        if response.status_code != 200:
            self._raise_for_status("token", response)
            raise FtPermanentError(  # 1xx/2xx/3xx other than 200
                f"http_{response.status_code}",
                f"token: unexpected HTTP {response.status_code}",
                endpoint="token",
                status=response.status_code,
            )
        return response

    def _fetch_token_locked(self) -> str:
        endpoint = "token"
        asked_at = self._clock()
        started = time.perf_counter()
        self._token_response = None
        outcome: str = "error"
        self.token_fetches += 1
        try:
            token = self._session.fetch_token(
                self.config.token_url,
                grant_type="client_credentials",
                timeout=self.config.timeout,
            )
        except FtApiError:
            raise
        except requests.Timeout as error:
            outcome = "timeout"
            raise FtRetryableError(
                "timeout", "token: timed out", endpoint=endpoint, maybe_applied=False
            ) from error
        except requests.ConnectionError as error:
            outcome = "connection_error"
            raise FtRetryableError(
                "connection_error", "token: connection failed", endpoint=endpoint
            ) from error
        except (_AuthlibOAuthError, ValueError, requests.RequestException) as error:
            response = self._token_response
            status = response.status_code if response is not None else None
            raise FtPermanentError(
                "bad_token_response",
                f"token: unusable answer ({type(error).__name__})",
                endpoint=endpoint,
                status=status,
            ) from error
        finally:
            status_text = (
                str(self._token_response.status_code)
                if self._token_response is not None
                else outcome
            )
            self._log("POST", TOKEN_PATH, status_text, started)
        access_token = token.get("access_token")
        if not isinstance(access_token, str) or not access_token:
            raise FtPermanentError(
                "bad_token_response", "token: answer without access_token", endpoint=endpoint
            )
        try:
            lifetime = float(token.get("expires_in", _DEFAULT_TOKEN_LIFETIME))
        except (TypeError, ValueError):
            lifetime = _DEFAULT_TOKEN_LIFETIME
        margin = min(max(self.config.token_expiry_margin, 0.0), lifetime / 2)
        self._token = access_token
        self._token_valid_until = asked_at + lifetime - margin
        return access_token

    # -- HTTP

    def _check_jeton(self, endpoint: str, jeton: str) -> None:
        if not isinstance(jeton, str) or not jeton.strip() or "\n" in jeton or "\r" in jeton:
            raise FtInvalidRequestError(
                "invalid_jeton", "jeton must be a non-empty single-line string", endpoint=endpoint
            )

    def _call(
        self,
        endpoint: str,
        method: str,
        path: str,
        *,
        json_body: Mapping[str, Any] | None,
        headers: Mapping[str, str] | None = None,
        idempotent: bool = True,
    ) -> requests.Response:
        """Send one API call with a valid token; on 401, renew the token and replay once."""
        url = self._api_base + path
        for attempt in (1, 2):
            token = self._access_token()
            all_headers = {
                "Accept": "application/json",
                "pa-identifiant-agent": self.config.agent_id,
                "pa-nom-agent": self.config.agent_name,
                "pa-prenom-agent": self.config.agent_first_name,
                **(headers or {}),
            }
            started = time.perf_counter()
            try:
                response = self._session.request(
                    method,
                    url,
                    json=json_body,
                    headers=all_headers,
                    timeout=self.config.timeout,
                    auth=_BearerAuth(token),
                    allow_redirects=False,
                )
            except requests.ConnectTimeout as error:
                self._log(method, path, "timeout", started)
                raise FtRetryableError(
                    "timeout", f"{endpoint}: connection timed out", endpoint=endpoint
                ) from error
            except requests.Timeout as error:
                self._log(method, path, "timeout", started)
                raise FtRetryableError(
                    "timeout",
                    f"{endpoint}: no answer within {self.config.timeout:g} s",
                    endpoint=endpoint,
                    maybe_applied=not idempotent,
                ) from error
            except requests.ConnectionError as error:
                self._log(method, path, "connection_error", started)
                raise FtRetryableError(
                    "connection_error",
                    f"{endpoint}: connection failed ({type(error).__name__})",
                    endpoint=endpoint,
                    maybe_applied=not idempotent,
                ) from error
            except requests.RequestException as error:
                self._log(method, path, "request_error", started)
                raise FtPermanentError(
                    "request_error",
                    f"{endpoint}: request could not be sent ({type(error).__name__})",
                    endpoint=endpoint,
                ) from error
            self._log(method, path, str(response.status_code), started)
            if response.status_code == 401 and attempt == 1:
                self._invalidate(token)
                continue
            return response
        return response  # second 401: reported by _raise_for_status

    def _raise_for_status(
        self, endpoint: str, response: requests.Response, *, idempotent: bool = True
    ) -> None:
        status = response.status_code
        if 200 <= status < 300:
            return
        code = _code_retour(response)
        detail = code or _oauth_error(response)
        suffix = f" ({detail})" if detail else ""
        if status == 429 or status == 408 or status >= 500:
            raise FtRetryableError(
                f"http_{status}",
                f"{endpoint}: HTTP {status}{suffix}",
                endpoint=endpoint,
                status=status,
                retry_after=parse_retry_after(response.headers.get("Retry-After")),
                maybe_applied=not idempotent and status >= 500,
            )
        if code == "R001":
            raise FtForbiddenError(
                "R001",
                f"{endpoint}: access to this person refused (R001, HTTP {status})",
                endpoint=endpoint,
                status=status,
            )
        raise FtPermanentError(
            code or f"http_{status}",
            f"{endpoint}: HTTP {status}{suffix}",
            endpoint=endpoint,
            status=status,
        )

    def _log(self, method: str, path: str, status: str, started: float) -> None:
        duration_ms = (time.perf_counter() - started) * 1000
        level = logging.INFO if status.isdigit() and int(status) < 400 else logging.WARNING
        logger.log(
            level,
            "france_travail %s %s -> %s (%.0f ms)",
            method,
            path,
            status,
            duration_ms,
            extra={
                "ft_method": method,
                "ft_path": path,
                "ft_status": status,
                "ft_duration_ms": round(duration_ms, 1),
            },
        )


# --------------------------------------------------------------------------- parsing


def _text(value: object) -> str | None:
    if isinstance(value, str):
        return value.strip() or None
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    return None


def _parse_date(value: object) -> date | None:
    text = _text(value)
    if text is None:
        return None
    try:
        return date.fromisoformat(text[:10])
    except ValueError:
        pass
    try:
        return datetime.strptime(text[:10], "%d/%m/%Y").date()  # noqa: DTZ007 - a date only
    except ValueError:
        return None


def _structure_label(value: object) -> str | None:
    if isinstance(value, dict):
        for key in ("libelle_structure", "libelleStructure", "libelle", "nom", "code"):
            label = _text(value.get(key))
            if label:
                return label
        return None
    return _text(value)


def _criteria(data: Mapping[str, Any]) -> tuple[FtCriterion, ...]:
    raw: object = None
    for key in ("criteres_orientation", "criteresOrientation", "criteres", "criteria"):
        if key in data:
            raw = data[key]
            break
    result: list[FtCriterion] = []
    if isinstance(raw, dict):
        for name, value in raw.items():
            scalar = value if isinstance(value, str | bool | int | float) or value is None else None
            result.append(FtCriterion(str(name), scalar))
    elif isinstance(raw, list):
        for item in raw:
            if isinstance(item, str):
                result.append(FtCriterion(item, True))
            elif isinstance(item, dict):
                name = (
                    _text(item.get("code")) or _text(item.get("libelle")) or _text(item.get("nom"))
                )
                if name:
                    value = item.get("valeur", item.get("value", True))
                    scalar = value if isinstance(value, str | bool | int | float) else None
                    result.append(FtCriterion(name, scalar))
    return tuple(result)


def _parse_orientation(data: Mapping[str, Any]) -> FtOrientation:
    entry = data.get("date_entree_parcours", data.get("dateEntreeParcours"))
    if entry is None:
        entry = data.get("date_creation", data.get("dateCreation"))
    return FtOrientation(
        parcours=_text(data.get("parcours")),
        structure=_structure_label(data.get("structure")),
        statut=_text(data.get("statut")),
        date_entree_parcours=_parse_date(entry),
        criteria=_criteria(data),
        organisme=_text(data.get("organisme")),
        etat=_text(data.get("etat")),
        raw=dict(data),
    )
