"""Where alerts go: email over SMTP and Slack incoming webhooks.

Every send has a hard deadline (:data:`SEND_DEADLINE` by default), over and above the
per-operation timeouts: a server that accepts the connection and then stalls, or
trickles a byte at a time so that no single read ever times out, costs at most the
deadline. The engine holds a delivery's lease for longer than that (it checks at
construction), so a send can never outlive the lease that makes it this process's.
After the deadline nothing more is written: the message cannot arrive late from a
process that has given up on it. How each channel does it:

- email: smtplib runs in a thread of its own; every byte it writes passes a fence that
  closes at the deadline, and at the deadline the socket is shut down, which ends a
  blocked read at once (name resolution included: the caller never waits past it);
- Slack: the POST runs on an event loop of its own and is cancelled at the deadline,
  which closes the connection wherever the request stands.

Both run in the engine's worker threads, never on the app's event loop. A failure
raises :class:`DeliveryError` whose text is safe to store and show: it names what went
wrong (``SMTPAuthenticationError: 535 ...``, ``HTTP 500``) and never the SMTP password
or the webhook URL, which is itself a secret.

Each send carries the delivery's dedupe key (``messages.delivery_key``), the same on
every attempt: the email's ``Message-ID``, and a field of the Slack payload.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import smtplib
import socket
import ssl
import threading
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.utils import formatdate, parseaddr
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

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

if TYPE_CHECKING:
    from _typeshed import ReadableBuffer

SMTP_TIMEOUT = 15.0  # one SMTP connect, read or write
SLACK_TIMEOUT = 10.0  # one HTTP connect, read or write
SEND_DEADLINE = 30.0  # one whole send, whatever the server does (the lease is longer)
MAX_ERROR_CHARS = 300
MESSAGE_ID_DOMAIN = "chatmon.invalid"  # when the sender address has no domain

T = TypeVar("T")


class DeliveryError(Exception):
    """A channel could not deliver; ``str(error)`` is safe to store and display."""


class Channel(Protocol):
    """Anything that can deliver an :class:`AlertMessage`."""

    @property
    def name(self) -> str:
        """``email`` or ``slack``: the delivery rows' channel."""

    @property
    def deadline(self) -> float:
        """Seconds: no send takes longer, and none writes anything after it."""

    def send(self, message: AlertMessage, *, key: str) -> None:
        """Deliver with dedupe ``key``, or raise :class:`DeliveryError`."""


class _DeadlinePassed(Exception):
    """A send ran out of time (turned into a :class:`DeliveryError` naming the deadline)."""


def _deadline_error(seconds: float, where: str) -> DeliveryError:
    return DeliveryError(f"no answer within the {seconds:g} s send deadline from {where}")


def _safe(text: str, *secrets: str | None) -> str:
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    return mask_secrets(text)[:MAX_ERROR_CHARS]


# ----------------------------------------------------------------------------- email


def message_id(key: str, *, sender: str) -> str:
    """The ``Message-ID`` of every attempt of one delivery: its key at the sender's domain
    (never this host's name, which differs between the processes that may retry it)."""
    domain = parseaddr(sender)[1].rpartition("@")[2] or MESSAGE_ID_DOMAIN
    return f"<{key}@{domain}>"


def build_email(
    message: AlertMessage, *, sender: str, recipients: list[str], key: str
) -> EmailMessage:
    """A multipart/alternative email: the plain-text facts and the HTML version."""
    mail = EmailMessage()
    mail["Subject"] = subject(message)
    mail["From"] = sender
    mail["To"] = ", ".join(recipients)
    mail["Date"] = formatdate(localtime=False, usegmt=True)
    mail["Message-ID"] = message_id(key, sender=sender)
    mail["X-Chatmon-Alert"] = f"{message.rule} {message.kind}"
    mail.set_content(plain_text(message))
    mail.add_alternative(html_body(message), subtype="html")
    return mail


class _Fence(smtplib.SMTP):
    """Makes an smtplib client keep a deadline (mixed into SMTP and SMTP_SSL).

    Every byte smtplib writes goes through ``send``: once ``closes_at`` has passed it
    refuses, so a session its caller gave up on never delivers late. ``cut`` closes the
    fence and shuts the socket down, which ends a read blocked on a silent or trickling
    server at once (closing it would not wake that read).
    """

    closes_at: float = math.inf
    sock: socket.socket | None

    @property
    def expired(self) -> bool:
        return time.monotonic() >= self.closes_at

    def connect(self, host: str = "localhost", port: int = 0, source_address: Any = None) -> Any:
        # smtplib takes the TLS server name (``_host``) from the constructor's host only;
        # the client is made unconnected, so that ``cut`` can reach it while it connects
        self._host = host
        return super().connect(host, port, source_address)

    def send(self, s: ReadableBuffer | str) -> None:
        if self.expired:
            raise smtplib.SMTPServerDisconnected("send deadline passed")
        super().send(s)

    def cut(self) -> None:
        self.closes_at = -math.inf
        sock = getattr(self, "sock", None)
        if sock is not None:
            with contextlib.suppress(OSError):
                socket.socket.shutdown(sock, socket.SHUT_RDWR)  # the fd, even under TLS


class _SMTP(_Fence, smtplib.SMTP):
    pass


class _SMTPS(_Fence, smtplib.SMTP_SSL):
    pass


def _in_thread(seconds: float, work: Callable[[], None], *, cut: Callable[[], None]) -> None:
    """Run ``work`` in a daemon thread for at most ``seconds``: then ``cut`` it and raise
    :class:`_DeadlinePassed`. ``work``'s own exception is raised here."""
    done = threading.Event()
    failure: list[BaseException] = []

    def run() -> None:
        try:
            work()
        except BaseException as exc:  # noqa: BLE001 - handed to the caller below
            failure.append(exc)
        finally:
            done.set()

    threading.Thread(target=run, name="chatmon-smtp-send", daemon=True).start()
    if not done.wait(seconds):
        cut()
        raise _DeadlinePassed
    if failure:
        raise failure[0]


@dataclass
class EmailChannel:
    """SMTP with STARTTLS (default), implicit TLS (``use_ssl``) or, if asked, plain.

    With STARTTLS on, a server that does not offer it is an error: the message (and
    the password) is never sent in clear text by surprise. ``timeout`` bounds each
    operation, ``deadline`` the whole send.
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
    deadline: float = SEND_DEADLINE
    ssl_context: ssl.SSLContext | None = field(default=None, repr=False)
    name: str = "email"

    def send(self, message: AlertMessage, *, key: str) -> None:
        mail = build_email(message, sender=self.sender, recipients=self.recipients, key=key)
        self.send_mail(mail)

    def send_mail(self, mail: EmailMessage) -> None:
        """Deliver a ready ``mail`` (the digest's too) under this channel's TLS, login and
        deadline, or raise :class:`DeliveryError`."""
        closes_at = time.monotonic() + self.deadline
        clients: list[_SMTP | _SMTPS] = []  # made in the thread: even getfqdn() may hang

        def cut() -> None:
            for client in clients:
                client.cut()

        try:
            _in_thread(self.deadline, lambda: self._session(clients, closes_at, mail), cut=cut)
        except (_DeadlinePassed, smtplib.SMTPException, OSError) as exc:
            if time.monotonic() >= closes_at:
                raise _deadline_error(self.deadline, f"{self.host}:{self.port}") from None
            raise DeliveryError(self._describe(exc)) from None

    def _session(self, clients: list[_SMTP | _SMTPS], closes_at: float, mail: EmailMessage) -> None:
        client = self._client()
        client.closes_at = closes_at
        clients.append(client)
        client.connect(self.host, self.port)
        with client:
            if self.starttls and not self.use_ssl:
                client.starttls(context=self._context())
            if self.username:
                secret = self.password.get_secret_value() if self.password else ""
                client.login(self.username, secret)
            client.send_message(mail, from_addr=self.sender, to_addrs=self.recipients)

    def _context(self) -> ssl.SSLContext:
        return self.ssl_context or ssl.create_default_context()

    def _client(self) -> _SMTP | _SMTPS:
        """A client not connected yet (it connects in the send's thread)."""
        timeout = min(self.timeout, self.deadline)
        if self.use_ssl:
            return _SMTPS(timeout=timeout, context=self._context())
        return _SMTP(timeout=timeout)

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


def _on_own_loop(work: Coroutine[Any, Any, T], seconds: float) -> T:
    """Run ``work`` on an event loop of its own, cancelled after ``seconds``
    (:class:`_DeadlinePassed`).

    The loop is closed without waiting for a name lookup still running in its thread
    pool, which ``asyncio.run`` would wait for: the caller's wait ends at the deadline.
    """
    loop = asyncio.new_event_loop()
    try:
        return loop.run_until_complete(_bounded(work, seconds))
    finally:
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.close()


async def _bounded(work: Coroutine[Any, Any, T], seconds: float) -> T:
    scope = asyncio.timeout(seconds)
    try:
        async with scope:
            return await work
    except TimeoutError:
        if scope.expired():
            raise _DeadlinePassed from None
        raise


@dataclass
class SlackChannel:
    """A Slack incoming webhook: one JSON POST, success is HTTP 2xx.

    ``timeout`` bounds each operation (connect, write, read), ``deadline`` the whole POST.
    """

    webhook_url: SecretStr
    timeout: float = SLACK_TIMEOUT
    deadline: float = SEND_DEADLINE
    name: str = "slack"
    _tls: ssl.SSLContext | None = field(default=None, init=False, repr=False, compare=False)

    def send(self, message: AlertMessage, *, key: str) -> None:
        self.post(slack_payload(message, key=key))

    def post(self, payload: dict[str, Any]) -> None:
        """POST a ready ``payload`` (the digest's too) within this channel's deadline, or
        raise :class:`DeliveryError`."""
        url = self.webhook_url.get_secret_value()
        try:
            response = _on_own_loop(self._post(url, payload), self.deadline)
        except _DeadlinePassed:
            raise _deadline_error(self.deadline, "the webhook") from None
        except httpx.HTTPError as exc:
            raise DeliveryError(_safe(f"{type(exc).__name__}: {exc}", url)) from None
        if not response.is_success:
            body = response.text.strip().replace("\n", " ")[:100]
            raise DeliveryError(_safe(f"HTTP {response.status_code} from the webhook: {body}", url))

    async def _post(self, url: str, payload: dict[str, Any]) -> httpx.Response:
        if self._tls is None:  # loading the CA bundle is most of a client's cost: once
            self._tls = httpx.create_ssl_context()
        timeout = min(self.timeout, self.deadline)
        async with httpx.AsyncClient(timeout=timeout, verify=self._tls) as client:
            return await client.post(url, json=payload)


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
