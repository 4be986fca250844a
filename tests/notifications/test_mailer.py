"""The mailer: SMTP to a real local server, log-only fallback without an address in logs."""

from __future__ import annotations

import logging

from spie.notifications.letters import french_date, french_datetime
from spie.notifications.mailer import LogMailer, OutgoingMail, SmtpMailer, get_mailer
from tests.notifications.smtp_server import smtp_inbox  # noqa: F401 - fixture

MAIL = OutgoingMail(
    recipient_ref="person:42",
    to_address="helene.dupre@example.org",
    subject="Convocation — lundi 17 mars 2025",
    text="Bonjour,\nVotre rencontre a lieu à Lyon.\n",
)


def test_smtp_mailer_delivers_to_the_configured_server(smtp_inbox):  # noqa: F811
    mailer = get_mailer()
    assert isinstance(mailer, SmtpMailer)
    mailer.send(MAIL)
    assert len(smtp_inbox.messages) == 1
    message = smtp_inbox.messages[0]
    assert message["To"] == "helene.dupre@example.org"
    assert message["From"] == "rio@metropole.test"
    assert message["Subject"] == "Convocation — lundi 17 mars 2025"
    assert "Votre rencontre a lieu à Lyon." in smtp_inbox.bodies()[0]


def test_without_smtp_host_the_log_mailer_never_logs_the_address(app, caplog):
    assert app.config.get("SPIE_SMTP_HOST") is None
    mailer = get_mailer()
    assert isinstance(mailer, LogMailer)
    with caplog.at_level(logging.INFO, logger="spie.notifications.mailer"):
        mailer.send(MAIL)
    assert "mail to person:42 sent" in caplog.text
    assert "example.org" not in caplog.text
    assert mailer.sent == ["person:42"]


def test_french_dates_for_letters():
    import datetime as dt

    assert french_date(dt.date(2025, 5, 1)) == "jeudi 1er mai 2025"
    summer = dt.datetime(2025, 7, 3, 7, 5, tzinfo=dt.UTC)
    assert french_datetime(summer) == "jeudi 3 juillet 2025 à 9 h 05"
