"""France Travail partner API client, against the local fake France Travail over real HTTP."""

from __future__ import annotations

import logging
import socket
import threading
import time
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from email.utils import format_datetime

import pytest

from spie.common.nir import nir_with_key
from spie.integrations.france_travail.api import (
    ORIENTATION_PATH,
    RECHERCHER_USAGER_PATH,
    TOKEN_PATH,
    FranceTravailClient,
    FranceTravailGateway,
    FtApiConfig,
    FtApiError,
    FtCriterion,
    FtForbiddenError,
    FtInvalidRequestError,
    FtPermanentError,
    FtRetryableError,
    SearchOutcome,
    parse_retry_after,
)

from .ft_fake_server import (
    ORIENTATION,
    READ_ORIENTATION,
    SEARCH,
    TOKEN,
    FakeFranceTravail,
)

BIRTH = date(1993, 8, 8)
NIR15 = nir_with_key("2930838269507")
OTHER_BIRTH = date(1967, 10, 22)
OTHER_NIR15 = nir_with_key("2671042299060")
TWIN_NIR15 = nir_with_key("1740969037896")
FORBIDDEN_NIR15 = nir_with_key("2130569091155")
UNKNOWN_NIR15 = nir_with_key("1010242078956")
BAD_KEY_NIR15 = NIR15[:-2] + f"{(int(NIR15[-2:]) % 97) + 1:02d}"


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def ft() -> Iterator[FakeFranceTravail]:
    with FakeFranceTravail() as server:
        yield server


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def client(ft: FakeFranceTravail, clock: FakeClock) -> Iterator[FranceTravailClient]:
    with FranceTravailClient(ft.client_config(timeout=1.0), clock=clock) as api:
        yield api


@pytest.fixture
def jeton(ft: FakeFranceTravail) -> str:
    return ft.add_user(BIRTH, NIR15)


# --------------------------------------------------------------------------- token


def test_token_is_fetched_once_and_reused(
    ft: FakeFranceTravail, client: FranceTravailClient, jeton: str
) -> None:
    for _ in range(4):
        assert client.search_user(BIRTH, NIR15).jeton == jeton
    client.send_orientation(jeton, "PSO", "CD", "SPIE")
    assert ft.token_requests == 1
    (token,) = ft.issued_tokens
    api_calls = [request for request in ft.requests if request.endpoint != TOKEN]
    assert len(api_calls) == 5
    assert {request.headers["authorization"] for request in api_calls} == {f"Bearer {token}"}


def test_token_request_is_client_credentials_with_secret_in_body(
    ft: FakeFranceTravail, client: FranceTravailClient, jeton: str
) -> None:
    client.search_user(BIRTH, NIR15)
    (request,) = ft.requests_to(TOKEN)
    assert request.method == "POST"
    assert request.path == "/auth" + TOKEN_PATH
    assert request.query == {"realm": ["/partenaire"]}
    form = request.form()
    assert form["grant_type"] == "client_credentials"
    assert (form["client_id"], form["client_secret"]) == (ft.client_id, ft.client_secret)
    assert set(form["scope"].split()) == {
        "api_rechercher-usagerv2",
        "rechercheusager",
        "profil_accedant",
        "api_orientationusagerv1",
        "orientationusager",
    }
    assert "authorization" not in request.headers  # client_secret_post, not basic auth


def test_token_is_renewed_shortly_before_expiry(
    ft: FakeFranceTravail, client: FranceTravailClient, clock: FakeClock, jeton: str
) -> None:
    # expires_in 1499 s, margin 60 s: reused for 1439 s.
    client.search_user(BIRTH, NIR15)
    clock.now += 1438
    client.search_user(BIRTH, NIR15)
    assert ft.token_requests == 1
    clock.now += 2
    client.search_user(BIRTH, NIR15)
    assert ft.token_requests == 2
    _first, second = ft.issued_tokens
    last_call = ft.requests_to(SEARCH)[-1]
    assert last_call.headers["authorization"] == f"Bearer {second}"


def test_token_renewed_in_real_time_with_small_expires_in(
    jeton: str, ft: FakeFranceTravail
) -> None:
    ft.expires_in = 2
    config = ft.client_config(token_expiry_margin=1.5)  # capped at half the lifetime: 1 s
    with FranceTravailClient(config) as api:
        api.search_user(BIRTH, NIR15)
        api.search_user(BIRTH, NIR15)
        assert ft.token_requests == 1
        time.sleep(1.1)
        api.search_user(BIRTH, NIR15)
        assert ft.token_requests == 2


def test_token_refetched_on_401_and_call_replayed_once(
    ft: FakeFranceTravail, client: FranceTravailClient, jeton: str
) -> None:
    client.search_user(BIRTH, NIR15)
    ft.revoke_tokens()
    assert client.search_user(BIRTH, NIR15).jeton == jeton
    assert ft.token_requests == 2
    assert len(ft.requests_to(SEARCH)) == 3  # ok, 401, replay


def test_persistent_401_is_permanent(
    ft: FakeFranceTravail, client: FranceTravailClient, jeton: str
) -> None:
    ft.fail_next(SEARCH, 401, times=2)
    with pytest.raises(FtPermanentError) as raised:
        client.search_user(BIRTH, NIR15)
    assert (raised.value.code, raised.value.status) == ("http_401", 401)
    assert ft.token_requests == 2
    assert len(ft.requests_to(SEARCH)) == 2


def test_concurrent_callers_fetch_the_token_once(ft: FakeFranceTravail, jeton: str) -> None:
    ft.token_delay = 0.3  # callers pile up while the token is being fetched
    barrier = threading.Barrier(8)
    results: list[str | None] = []
    failures: list[BaseException] = []
    with FranceTravailClient(ft.client_config()) as api:

        def call() -> None:
            barrier.wait()
            try:
                results.append(api.search_user(BIRTH, NIR15).jeton)
            except BaseException as error:  # reported below
                failures.append(error)

        threads = [threading.Thread(target=call) for _ in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=10)
    assert failures == []
    assert results == [jeton] * 8
    assert ft.token_requests == 1
    assert len(ft.requests_to(SEARCH)) == 8


def test_wrong_client_secret_is_permanent(ft: FakeFranceTravail) -> None:
    with (
        FranceTravailClient(ft.client_config(client_secret="wrong")) as api,
        pytest.raises(FtPermanentError) as raised,
    ):
        api.search_user(BIRTH, NIR15)
    assert (raised.value.endpoint, raised.value.status, raised.value.code) == (
        "token",
        401,
        "http_401",
    )
    assert str(raised.value) == "token: HTTP 401 (invalid_client)"
    assert ft.requests_to(SEARCH) == []


def test_scope_refused_by_token_endpoint_is_permanent(ft: FakeFranceTravail) -> None:
    with (
        FranceTravailClient(ft.client_config(scopes=("api_inconnue",))) as api,
        pytest.raises(FtPermanentError) as raised,
    ):
        api.search_user(BIRTH, NIR15)
    assert (raised.value.endpoint, raised.value.status) == ("token", 400)


def test_token_endpoint_unavailable_is_retryable(
    ft: FakeFranceTravail, client: FranceTravailClient, jeton: str
) -> None:
    ft.fail_next(TOKEN, 503, retry_after=30)
    with pytest.raises(FtRetryableError) as raised:
        client.search_user(BIRTH, NIR15)
    assert (raised.value.endpoint, raised.value.status, raised.value.retry_after) == (
        "token",
        503,
        30.0,
    )
    assert client.search_user(BIRTH, NIR15).found  # next call fetches a token
    assert ft.token_requests == 2


# --------------------------------------------------------------------------- rechercher usager


def test_search_outcomes(ft: FakeFranceTravail, client: FranceTravailClient, jeton: str) -> None:
    ft.add_duplicate(OTHER_BIRTH, TWIN_NIR15)
    ft.forbid_nir(FORBIDDEN_NIR15)

    found = client.search_user(BIRTH, NIR15)
    assert (found.outcome, found.code_retour, found.jeton, found.found) == (
        SearchOutcome.FOUND,
        "S001",
        jeton,
        True,
    )
    assert jeton not in repr(found)

    not_found = client.search_user(BIRTH, UNKNOWN_NIR15)
    assert (not_found.outcome, not_found.code_retour, not_found.jeton) == (
        SearchOutcome.NOT_FOUND,
        "S002",
        None,
    )
    wrong_birth = client.search_user(OTHER_BIRTH, NIR15)
    assert wrong_birth.outcome is SearchOutcome.NOT_FOUND

    several = client.search_user(OTHER_BIRTH, TWIN_NIR15)
    assert (several.outcome, several.code_retour, several.jeton) == (
        SearchOutcome.SEVERAL,
        "S003",
        None,
    )

    with pytest.raises(FtForbiddenError) as raised:
        client.search_user(BIRTH, FORBIDDEN_NIR15)
    assert isinstance(raised.value, FtPermanentError)
    assert not raised.value.retryable
    assert (raised.value.code, raised.value.status) == ("R001", 403)


def test_search_request_shape(
    ft: FakeFranceTravail, client: FranceTravailClient, jeton: str
) -> None:
    client.search_user(BIRTH, NIR15[:5] + " " + NIR15[5:].lower())
    (request,) = ft.requests_to(SEARCH)
    assert request.path == "/api" + RECHERCHER_USAGER_PATH
    assert request.json() == {"dateNaissance": "1993-08-08", "nir": NIR15}
    assert request.headers["pa-identifiant-agent"] == "BATCH"
    assert request.headers["pa-nom-agent"] == "SPIE-TESTS"
    assert request.headers["pa-prenom-agent"] == "BATCH"
    assert request.headers["content-type"] == "application/json"


@pytest.mark.parametrize(
    "bad_nir",
    ["2930838269507", BAD_KEY_NIR15, "29308382695X700", ""],
)
def test_invalid_nir_is_refused_before_sending(
    ft: FakeFranceTravail, client: FranceTravailClient, bad_nir: str
) -> None:
    with pytest.raises(FtInvalidRequestError) as raised:
        client.search_user(BIRTH, bad_nir)
    assert isinstance(raised.value, ValueError)
    assert raised.value.code == "invalid_nir"
    assert ft.requests == []


# --------------------------------------------------------------------------- errors


def test_500_is_retryable(ft: FakeFranceTravail, client: FranceTravailClient, jeton: str) -> None:
    ft.fail_next(SEARCH, 500)
    with pytest.raises(FtRetryableError) as raised:
        client.search_user(BIRTH, NIR15)
    error = raised.value
    assert (error.code, error.status, error.retry_after, error.endpoint) == (
        "http_500",
        500,
        None,
        "rechercher_usager",
    )
    assert error.retryable
    assert client.search_user(BIRTH, NIR15).found


def test_429_is_retryable_with_retry_after(
    ft: FakeFranceTravail, client: FranceTravailClient, jeton: str
) -> None:
    ft.fail_next(SEARCH, 429, retry_after=7)
    with pytest.raises(FtRetryableError) as raised:
        client.search_user(BIRTH, NIR15)
    assert (raised.value.status, raised.value.retry_after) == (429, 7.0)


def test_503_with_http_date_retry_after(
    ft: FakeFranceTravail, client: FranceTravailClient, jeton: str
) -> None:
    when = datetime.now(UTC) + timedelta(seconds=120)
    ft.fail_next(READ_ORIENTATION, 503, retry_after=format_datetime(when, usegmt=True))
    with pytest.raises(FtRetryableError) as raised:
        client.read_orientation(jeton)
    assert raised.value.retry_after is not None
    assert 100 <= raised.value.retry_after <= 121


def test_400_is_permanent(ft: FakeFranceTravail, client: FranceTravailClient, jeton: str) -> None:
    ft.fail_next(SEARCH, 400, body={"codeRetour": "E400", "message": "requête invalide"})
    with pytest.raises(FtPermanentError) as raised:
        client.search_user(BIRTH, NIR15)
    assert not isinstance(raised.value, FtRetryableError)
    assert (raised.value.code, raised.value.status) == ("E400", 400)
    ft.fail_next(SEARCH, 404, body="<html>not json</html>")
    with pytest.raises(FtPermanentError) as raised:
        client.search_user(BIRTH, NIR15)
    assert (raised.value.code, raised.value.status) == ("http_404", 404)


def test_missing_agent_headers_are_refused_by_the_server(ft: FakeFranceTravail, jeton: str) -> None:
    with (
        FranceTravailClient(ft.client_config(agent_name="")) as api,
        pytest.raises(FtPermanentError) as raised,
    ):
        api.search_user(BIRTH, NIR15)
    assert raised.value.status == 400


def test_timeout_is_retryable(ft: FakeFranceTravail, jeton: str) -> None:
    ft.hang_next(SEARCH, seconds=5)
    with FranceTravailClient(ft.client_config(timeout=0.5)) as api:
        started = time.monotonic()
        with pytest.raises(FtRetryableError) as raised:
            api.search_user(BIRTH, NIR15)
        assert time.monotonic() - started < 3
        assert (raised.value.code, raised.value.status) == ("timeout", None)
        assert api.search_user(BIRTH, NIR15).found


def test_token_timeout_is_retryable(ft: FakeFranceTravail, jeton: str) -> None:
    ft.hang_next(TOKEN, seconds=5)
    with FranceTravailClient(ft.client_config(timeout=0.5)) as api:
        with pytest.raises(FtRetryableError) as raised:
            api.search_user(BIRTH, NIR15)
        assert (raised.value.code, raised.value.endpoint) == ("timeout", "token")
        assert api.search_user(BIRTH, NIR15).found


def test_connection_refused_is_retryable(ft: FakeFranceTravail) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    config = ft.client_config(api_base_url=f"http://127.0.0.1:{closed_port}/api", timeout=1)
    with FranceTravailClient(config) as api, pytest.raises(FtRetryableError) as raised:
        api.search_user(BIRTH, NIR15)
    assert raised.value.code == "connection_error"


def test_parse_retry_after() -> None:
    now = datetime(2026, 10, 1, 12, 0, tzinfo=UTC)
    assert parse_retry_after("12", now) == 12.0
    assert parse_retry_after("Thu, 01 Oct 2026 12:01:30 GMT", now) == 90.0
    assert parse_retry_after("Thu, 01 Oct 2026 11:00:00 GMT", now) == 0.0
    assert parse_retry_after("soon", now) is None
    assert parse_retry_after(None, now) is None


# --------------------------------------------------------------------------- orientation


def test_send_orientation_is_recorded_exactly_once(
    ft: FakeFranceTravail, client: FranceTravailClient, jeton: str
) -> None:
    sent = client.send_orientation(jeton, "PED", "CD", "SPIE-METROPOLE-LYON")
    assert (sent.status_code, sent.code_retour) == (201, "S001")
    assert len(ft.orientations) == 1
    (received,) = ft.orientations
    assert (received.jeton, received.parcours, received.organisme, received.origine) == (
        jeton,
        "PED",
        "CD",
        "SPIE-METROPOLE-LYON",
    )
    (request,) = ft.requests_to(ORIENTATION)
    assert request.path == "/api" + ORIENTATION_PATH
    assert request.json() == {
        "origine": "SPIE-METROPOLE-LYON",
        "parcours": "PED",
        "organisme": "CD",
    }
    assert request.headers["ft-jeton-usager"] == jeton
    assert request.headers["pa-identifiant-agent"] == "BATCH"


def test_send_orientation_after_token_revocation_still_sent_once(
    ft: FakeFranceTravail, client: FranceTravailClient, jeton: str
) -> None:
    client.search_user(BIRTH, NIR15)
    ft.revoke_tokens()
    client.send_orientation(jeton, "PSP", "CD", "SPIE")
    assert len(ft.orientations) == 1
    assert len(ft.requests_to(ORIENTATION)) == 2  # refused with 401, then replayed


def test_send_orientation_failures(
    ft: FakeFranceTravail, client: FranceTravailClient, jeton: str
) -> None:
    ft.fail_next(ORIENTATION, 502)
    with pytest.raises(FtRetryableError) as raised:
        client.send_orientation(jeton, "PSO", "CD", "SPIE")
    assert raised.value.maybe_applied
    ft.fail_next(ORIENTATION, 429, retry_after=3)
    with pytest.raises(FtRetryableError) as raised:
        client.send_orientation(jeton, "PSO", "CD", "SPIE")
    assert (raised.value.retry_after, raised.value.maybe_applied) == (3.0, False)
    with pytest.raises(FtPermanentError) as raised_permanent:
        client.send_orientation("jeton-inconnu", "PSO", "CD", "SPIE")
    assert raised_permanent.value.status == 400
    assert ft.orientations == []


def test_send_orientation_timeout_may_have_been_applied(ft: FakeFranceTravail, jeton: str) -> None:
    ft.hang_next(ORIENTATION, seconds=1.5, process_after=True)
    with (
        FranceTravailClient(ft.client_config(timeout=0.5)) as api,
        pytest.raises(FtRetryableError) as raised,
    ):
        api.send_orientation(jeton, "PSO", "CD", "SPIE")
    assert raised.value.maybe_applied
    deadline = time.monotonic() + 5
    while not ft.orientations and time.monotonic() < deadline:
        time.sleep(0.05)
    assert len(ft.orientations) == 1  # applied although the client saw a timeout


@pytest.mark.parametrize(
    ("parcours", "organisme", "origine", "code"),
    [
        ("XYZ", "CD", "SPIE", "invalid_parcours"),
        ("PED", "", "SPIE", "invalid_organisme"),
        ("PED", "CD", " ", "invalid_origine"),
    ],
)
def test_send_orientation_invalid_arguments_send_nothing(
    ft: FakeFranceTravail,
    client: FranceTravailClient,
    jeton: str,
    parcours: str,
    organisme: str,
    origine: str,
    code: str,
) -> None:
    with pytest.raises(FtInvalidRequestError) as raised:
        client.send_orientation(jeton, parcours, organisme, origine)  # type: ignore[arg-type]
    assert raised.value.code == code
    with pytest.raises(FtInvalidRequestError):
        client.send_orientation("", "PED", "CD", "SPIE")
    assert ft.requests == []


ORIENTATION_FROM_FT = {
    "parcours": "PSO",
    "organisme": "FT",
    "structure": {"code_structure": "69123", "libelle_structure": "Agence Lyon Part-Dieu"},
    "statut": "PRECONISE",
    "etat": "OUVERT",
    "date_entree_parcours": "2026-09-15",
    "criteres_orientation": {
        "situation_professionnelle": "SANS_EMPLOI",
        "capacite_a_travailler": True,
        "contrainte_sante": None,
    },
}


def test_read_orientation(ft: FakeFranceTravail, client: FranceTravailClient, jeton: str) -> None:
    assert client.read_orientation(jeton) is None  # 204: none yet
    ft.set_orientation(jeton, ORIENTATION_FROM_FT)
    orientation = client.read_orientation(jeton)
    assert orientation is not None
    assert (orientation.parcours, orientation.structure, orientation.statut) == (
        "PSO",
        "Agence Lyon Part-Dieu",
        "PRECONISE",
    )
    assert orientation.date_entree_parcours == date(2026, 9, 15)
    assert (orientation.organisme, orientation.etat) == ("FT", "OUVERT")
    assert orientation.criteria == (
        FtCriterion("situation_professionnelle", "SANS_EMPLOI"),
        FtCriterion("capacite_a_travailler", True),
        FtCriterion("contrainte_sante", None),
    )
    assert orientation.raw["structure"]["code_structure"] == "69123"
    (request, _) = ft.requests_to(READ_ORIENTATION)
    assert request.method == "POST"
    assert request.headers["ft-jeton-usager"] == jeton


def test_read_orientation_with_get_and_list_criteria(ft: FakeFranceTravail, jeton: str) -> None:
    ft.set_orientation(
        jeton,
        {
            "parcours": "PED",
            "structure": "CD69",
            "statut": "VALIDE",
            "dateEntreeParcours": "2026-10-01T08:30:00+02:00",
            "criteres": [{"code": "BOE", "valeur": True}, "MOBILITE"],
        },
    )
    with FranceTravailClient(ft.client_config(read_orientation_method="GET")) as api:
        orientation = api.read_orientation(jeton)
    assert orientation is not None
    assert (orientation.parcours, orientation.structure, orientation.date_entree_parcours) == (
        "PED",
        "CD69",
        date(2026, 10, 1),
    )
    assert orientation.criteria == (FtCriterion("BOE", True), FtCriterion("MOBILITE", True))
    assert ft.requests_to(READ_ORIENTATION)[0].method == "GET"


# --------------------------------------------------------------------------- logs and interface


def test_logs_and_errors_carry_no_personal_data(
    ft: FakeFranceTravail,
    client: FranceTravailClient,
    jeton: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    ft.forbid_nir(FORBIDDEN_NIR15)
    ft.set_orientation(jeton, ORIENTATION_FROM_FT)
    error_texts: list[str] = []
    client.search_user(BIRTH, NIR15)
    client.search_user(BIRTH, UNKNOWN_NIR15)
    client.send_orientation(jeton, "PSO", "CD", "SPIE")
    client.read_orientation(jeton)
    failing_calls = [
        lambda: client.search_user(BIRTH, FORBIDDEN_NIR15),  # 403 R001
        lambda: client.search_user(BIRTH, NIR15),  # 500, personal data in the body
        lambda: client.send_orientation(jeton, "PSO", "CD", "SPIE"),  # 429
        lambda: client.search_user(BIRTH, BAD_KEY_NIR15),  # refused before sending
        lambda: client.read_orientation(jeton),  # timeout
    ]
    for index, call in enumerate(failing_calls):
        if index == 1:
            ft.fail_next(SEARCH, 500, body={"codeRetour": "X", "message": NIR15})
        elif index == 2:
            ft.fail_next(ORIENTATION, 429, retry_after=1)
        elif index == 4:
            ft.hang_next(READ_ORIENTATION, seconds=5)
        with pytest.raises(FtApiError) as raised:
            call()
        error_texts += [str(raised.value), repr(raised.value)]

    ours = [record for record in caplog.records if record.name.startswith("spie.")]
    assert len(ours) >= 8
    for record in ours:
        assert record.ft_path in {  # type: ignore[attr-defined]
            TOKEN_PATH,
            RECHERCHER_USAGER_PATH,
            ORIENTATION_PATH,
            "/partenaire/orientationusager/v1/lectureOrientation",
        }
    messages = [record.getMessage() for record in ours]
    assert any("POST " + RECHERCHER_USAGER_PATH + " -> 200" in m for m in messages)
    assert any("-> 403" in m for m in messages)
    assert any("-> 500" in m for m in messages)

    everything = error_texts + [
        f"{record.getMessage()} {record.__dict__}" for record in caplog.records
    ]
    secrets_ = [
        NIR15,
        NIR15[:13],
        FORBIDDEN_NIR15[:13],
        UNKNOWN_NIR15[:13],
        "1993-08-08",
        "08/08/1993",
        jeton,
        ft.client_secret,
        *ft.issued_tokens,
        "Lyon Part-Dieu",
    ]
    for text in everything:
        for secret in secrets_:
            assert secret not in text


def test_client_implements_the_gateway_protocol(client: FranceTravailClient) -> None:
    assert isinstance(client, FranceTravailGateway)
    gateway: FranceTravailGateway = client
    assert gateway is client


def test_config_from_env_and_repr_hides_secret() -> None:
    config = FtApiConfig.from_env(
        {
            "SPIE_FT_AUTH_BASE_URL": "https://auth.example",
            "SPIE_FT_API_BASE_URL": "https://api.example",
            "SPIE_FT_CLIENT_ID": "id",
            "SPIE_FT_CLIENT_SECRET": "very-secret",
            "SPIE_FT_TIMEOUT": "3.5",
            "SPIE_FT_AGENT_NAME": "METROPOLE",
        }
    )
    assert (
        config.token_url == "https://auth.example/connexion/oauth2/access_token?realm=/partenaire"
    )
    assert (config.timeout, config.agent_name, config.agent_id) == (3.5, "METROPOLE", "BATCH")
    assert "very-secret" not in repr(config)
    with pytest.raises(KeyError, match="SPIE_FT_CLIENT_SECRET"):
        FtApiConfig.from_env(
            {"SPIE_FT_AUTH_BASE_URL": "a", "SPIE_FT_API_BASE_URL": "b", "SPIE_FT_CLIENT_ID": "c"}
        )


def test_malformed_token_answer_is_permanent(ft: FakeFranceTravail, jeton: str) -> None:
    ft.fail_next(TOKEN, 200, body="not a token")
    with FranceTravailClient(ft.client_config()) as api:
        with pytest.raises(FtPermanentError) as raised:
            api.search_user(BIRTH, NIR15)
        assert (raised.value.code, raised.value.status) == ("bad_token_response", 200)
        assert api.search_user(BIRTH, NIR15).found
