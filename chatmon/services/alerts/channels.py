"""Where alerts go: email over SMTP and Slack incoming webhooks.

Both senders are blocking (smtplib, httpx's sync client) with short timeouts; the
engine calls them from worker threads, never on the event loop. A failure raises
:class:`DeliveryError` whose text is safe to store and show: it names what went
wrong (``SMTPAuthenticationError: 535 ...``, ``HTTP 500``) and never the SMTP
password or the webhook URL, which is itself a secret.
"""

from __future__ import annotations

import smtplib
import ssl
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from typing import Protocol

import httpx
from pydantic import SecretStr

from chatmon.services.alerts.messages import (
    AlertMessage,
    html_body,
    plain_text,
    slack_payload,
    subject,
)
from chatmon.services.secrets import mask_secrets
from chatmon.settings import Settings

SMTP_TIMEOUT = 15.0
SLACK_TIMEOUT = 10.0
MAX_ERROR_CHARS = 300


class DeliveryError(Exception):
    """A channel could not deliver; ``str(error)`` is safe to store and display."""


class Channel(Protocol):
    """Anything that can deliver an :class:`AlertMessage`."""

    name: str

    def send(self, message: AlertMessage) -> None:
        """Deliver, or raise :class:`DeliveryError`."""


def _safe(text: str, *secrets: str | None) -> str:
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    return mask_secrets(text)[:MAX_ERROR_CHARS]


# ----------------------------------------------------------------------------- email


def build_email(message: AlertMessage, *, sender: str, recipients: list[str]) -> EmailMessage:
    """A multipart/alternative email: the plain-text facts and the HTML version."""
    mail = EmailMessage()
    mail["Subject"] = subject(message)
    mail["From"] = sender
    mail["To"] = ", ".join(recipients)
    mail["Date"] = formatdate(localtime=False, usegmt=True)
    mail["Message-ID"] = make_msgid(domain=sender.rpartition("@")[2] or None)
    mail["X-Chatmon-Alert"] = f"{message.rule} {message.kind}"
    mail.set_content(plain_text(message))
    mail.add_alternative(html_body(message), subtype="html")
    return mail


@dataclass
class EmailChannel:
    """SMTP with STARTTLS (default), implicit TLS (``use_ssl``) or, if asked, plain.

    With STARTTLS on, a server that does not offer it is an error: the message (and
    the password) is never sent in clear text by surprise.
    """

    host: str
    port: int
    sender: str
    recipients: list[str]
    username: str | None = None
    password: SecretStr | None = None
    starttls: bool = True
    use_ssl: bool = False
    timeout: float = SMTP_TIMEOUT
    ssl_context: ssl.SSLContext | None = field(default=None, repr=False)
    name: str = "email"

    def send(self, message: AlertMessage) -> None:
        mail = build_email(message, sender=self.sender, recipients=self.recipients)
        try:
            with self._connect() as smtp:
                if self.starttls and not self.use_ssl:
                    smtp.starttls(context=self._context())
                if self.username:
                    secret = self.password.get_secret_value() if self.password else ""
                    smtp.login(self.username, secret)
                smtp.send_message(mail, from_addr=self.sender, to_addrs=self.recipients)
        except (smtplib.SMTPException, OSError) as exc:
            raise DeliveryError(self._describe(exc)) from None

    def _context(self) -> ssl.SSLContext:
        return self.ssl_context or ssl.create_default_context()

    def _connect(self) -> smtplib.SMTP:
        if self.use_ssl:
            return smtplib.SMTP_SSL(
                self.host, self.port, timeout=self.timeout, context=self._context()
            )
        return smtplib.SMTP(self.host, self.port, timeout=self.timeout)

    def _describe(self, exc: BaseException) -> str:
        if isinstance(exc, smtplib.SMTPResponseException):
            reply = exc.smtp_error
            text = reply.decode(errors="replace") if isinstance(reply, bytes) else str(reply)
            detail = f"{exc.smtp_code} {text}"
        elif isinstance(exc, smtplib.SMTPRecipientsRefused):
            detail = "every recipient was refused"
        elif isinstance(exc, smtplib.SMTPNotSupportedError) and "STARTTLS" in str(exc):
            detail = (
                "the server does not offer STARTTLS "
                "(set SMTP_STARTTLS=false only on a trusted network)"
            )
        elif isinstance(exc, OSError) and exc.strerror:
            detail = exc.strerror
        else:
            detail = str(exc) or "no detail"
        where = f"{self.host}:{self.port}"
        secret = self.password.get_secret_value() if self.password else None
        return _safe(f"{type(exc).__name__} from {where}: {detail}", secret)


# ----------------------------------------------------------------------------- slack


@dataclass
class SlackChannel:
    """A Slack incoming webhook: one JSON POST, success is HTTP 2xx."""

    webhook_url: SecretStr
    timeout: float = SLACK_TIMEOUT
    name: str = "slack"

    def send(self, message: AlertMessage) -> None:
        url = self.webhook_url.get_secret_value()
        try:
            response = httpx.post(url, json=slack_payload(message), timeout=self.timeout)
        except httpx.HTTPError as exc:
            raise DeliveryError(_safe(f"{type(exc).__name__}: {exc}", url)) from None
        if not response.is_success:
            body = response.text.strip().replace("\n", " ")[:100]
            raise DeliveryError(_safe(f"HTTP {response.status_code} from the webhook: {body}", url))


# ----------------------------------------------------------------------------- configuration


def configured_channels(settings: Settings) -> list[Channel]:
    """The channels the settings enable: email when SMTP_HOST is set, Slack when
    SLACK_WEBHOOK_URL is set (possibly none)."""
    channels: list[Channel] = []
    if settings.smtp_host and settings.alert_email_from:
        channels.append(
            EmailChannel(
                host=settings.smtp_host,
                port=settings.smtp_port_or_default,
                sender=settings.alert_email_from,
                recipients=settings.email_recipients,
                username=settings.smtp_user,
                password=settings.smtp_password,
                starttls=settings.smtp_starttls,
                use_ssl=settings.smtp_ssl,
            )
        )
    if settings.slack_webhook_url:
        channels.append(SlackChannel(webhook_url=settings.slack_webhook_url))
    return channels
