"""One sign-in attempt, from the login form or an HTTP Basic header: throttled, then checked.

Order of work for an attempt (see :mod:`chatmon.services.login_throttle` for the limits):

1. Too many attempts already under way in this process: refused at once ("busy").
2. One attempt at a time per client address and per account in this process, so a
   burst from one client is counted before its next guess is checked.
3. A blocked address, or a blocked account (unless this browser signed in to that
   account before), is refused without checking the password. Refused attempts are
   not counted, and say nothing about the password.
4. Credentials verified a moment ago in this process are accepted from memory (HTTP
   Basic sends them with every request; Prometheus scrapes every 15 s), which spares
   the PBKDF2 but never the throttle.
5. Otherwise the password is checked on a small thread pool of its own: PBKDF2 takes
   ~0.3-0.5 s of CPU by design, and a flood of guesses must not occupy the threads the
   chat's database calls run on.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import logging
import time
import weakref
from collections import OrderedDict
from collections.abc import Callable, Sequence
from concurrent.futures import Executor
from contextlib import AsyncExitStack
from dataclasses import dataclass

from sqlalchemy.engine import Engine
from sqlmodel import Session

from chatmon.services import login_throttle
from chatmon.services.auth import Gate
from chatmon.services.forwarding import throttle_address

log = logging.getLogger(__name__)

MAX_PENDING_ATTEMPTS = 16  # attempts queued or being checked in one process
BUSY_RETRY_SECONDS = 1.0
REMEMBER_SECONDS = 300.0  # verified credentials reused without PBKDF2 (re-checked against the gate)
REMEMBER_MAX = 256
THROTTLE_UNAVAILABLE_RETRY = 5.0


@dataclass(frozen=True)
class LoginResult:
    """The outcome of one attempt.

    ``user`` is set on success (with ``credential``, the fingerprint a session
    carries); ``retry_after`` > 0 means the attempt was refused unchecked.
    ``account`` is the throttle's account key, which a device cookie names.
    """

    user: str | None = None
    credential: str = ""
    account: str = ""
    retry_after: float = 0.0
    area: str = ""  # the area (scope) whose gate accepted the credentials

    @property
    def ok(self) -> bool:
        """Whether the credentials were right."""
        return self.user is not None


def _first_match(
    gates: Sequence[tuple[str, Gate]], user: str, password: str
) -> tuple[str, Gate, str] | None:
    """``(area, gate, user)`` of the first gate that accepts the credentials (blocking)."""
    for area, gate in gates:
        signed_in = gate.check(user, password)
        if signed_in is not None:
            return area, gate, signed_in
    return None


class LoginGuard:
    """Throttles and checks sign-ins for every gate of one process."""

    def __init__(
        self,
        *,
        engine: Callable[[], Engine],
        key: bytes,
        executor: Executor,
        max_pending: int = MAX_PENDING_ATTEMPTS,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._engine = engine
        self._key = key
        self._executor = executor
        self._max_pending = max_pending
        self._clock = clock
        self._pending = 0
        self._locks: weakref.WeakValueDictionary[str, asyncio.Lock] = weakref.WeakValueDictionary()
        self._remembered: OrderedDict[bytes, tuple[str, str, float]] = OrderedDict()

    # ----- keys (hashed: the name field sometimes holds a mistyped password) ------------
    def _hashed(self, kind: str, value: str) -> str:
        mac = hmac.new(self._key, f"{kind}:{value}".encode(), hashlib.sha256).digest()
        return f"{kind}:{base64.urlsafe_b64encode(mac[:18]).decode()}"

    def ip_key(self, client_ip: str) -> str:
        """The throttle key of a client address (IPv6 by /64)."""
        return self._hashed("ip", throttle_address(client_ip))

    def account_key(self, gate: Gate, *, area: str, user: str) -> str:
        """The throttle key of the account a sign-in as ``user`` tries."""
        return self._hashed("account", f"{area}/{gate.account_of(user)}")

    # ----- the attempt ----------------------------------------------------------------------
    async def attempt(
        self,
        *,
        gates: Sequence[tuple[str, Gate]],
        user: str,
        password: str,
        client_ip: str,
        trusted_account: str | None = None,
    ) -> LoginResult:
        """Throttle, then check ``user``/``password`` against each ``(area, gate)`` in turn.

        One attempt however many gates (the chat's login also takes a monitor password):
        it counts once, and the throttle's account is that of the first gate.
        ``trusted_account`` is the account named by this browser's valid device cookie:
        a blocked account does not refuse its own returning browser.
        """
        area, first = gates[0]
        account = self.account_key(first, area=area, user=user)
        if self._pending >= self._max_pending:
            return LoginResult(account=account, retry_after=BUSY_RETRY_SECONDS)
        self._pending += 1
        try:
            return await self._attempt(
                gates, user, password, client_ip, account, trusted_account == account
            )
        finally:
            self._pending -= 1

    async def _attempt(
        self,
        gates: Sequence[tuple[str, Gate]],
        user: str,
        password: str,
        client_ip: str,
        account: str,
        trusted: bool,
    ) -> LoginResult:
        ip = self.ip_key(client_ip)
        async with AsyncExitStack() as locks:
            for key in sorted({ip, account}):
                await locks.enter_async_context(self._lock(key))
            now = self._clock()
            try:
                blocked = await asyncio.to_thread(self._blocked, [ip, account], now)
            except Exception as exc:  # noqa: BLE001 - no throttle, no check (fail closed)
                log.error("login throttle unavailable (%s): sign-in refused", type(exc).__name__)
                return LoginResult(account=account, retry_after=THROTTLE_UNAVAILABLE_RETRY)
            wait = max(blocked.get(ip, 0.0), 0.0 if trusted else blocked.get(account, 0.0))
            if wait > 0:
                return LoginResult(account=account, retry_after=wait)
            # Only now, past the throttle, may memory spare the PBKDF2: before it, a
            # blocked client could test guesses against memory at no cost.
            for gate_area, gate in gates:
                remembered = self._recall(gate, gate_area, user, password)
                if remembered is not None:
                    return LoginResult(
                        user=remembered[0],
                        credential=remembered[1],
                        account=account,
                        area=gate_area,
                    )
            loop = asyncio.get_running_loop()
            match = await loop.run_in_executor(self._executor, _first_match, gates, user, password)
            if match is None:
                await asyncio.to_thread(self._failed, ip, account, now)
                return LoginResult(account=account)
            area, gate, signed_in = match
            await asyncio.to_thread(self._succeeded, [ip, account])
            credential = gate.fingerprint(signed_in) or ""
            self._remember(area, user, password, signed_in, credential)
            return LoginResult(user=signed_in, credential=credential, account=account, area=area)

    def _lock(self, key: str) -> asyncio.Lock:
        lock = self._locks.get(key)
        if lock is None:
            lock = asyncio.Lock()
            self._locks[key] = lock
        return lock

    # ----- database work (worker threads) -----------------------------------------------------
    def _blocked(self, keys: list[str], now: float) -> dict[str, float]:
        with Session(self._engine()) as session:
            return login_throttle.blocked_for(session=session, keys=keys, now=now)

    def _failed(self, ip: str, account: str, now: float) -> None:
        try:
            with Session(self._engine()) as session:
                login_throttle.record_failure(
                    session=session, key=ip, policy=login_throttle.IP_POLICY, now=now
                )
                login_throttle.record_failure(
                    session=session, key=account, policy=login_throttle.ACCOUNT_POLICY, now=now
                )
        except Exception as exc:  # noqa: BLE001 - the answer is still "wrong password"
            log.error("login throttle: recording a failure failed (%s)", type(exc).__name__)

    def _succeeded(self, keys: list[str]) -> None:
        try:
            with Session(self._engine()) as session:
                login_throttle.forget(session=session, keys=keys)
        except Exception as exc:  # noqa: BLE001 - the sign-in itself succeeded
            log.error("login throttle: clearing counts failed (%s)", type(exc).__name__)

    # ----- recently verified credentials -------------------------------------------------------
    def _memo_key(self, area: str, user: str, password: str) -> bytes:
        message = "\0".join((area, user, password)).encode("utf-8", "surrogatepass")
        return hmac.new(self._key, b"remember:" + message, hashlib.sha256).digest()

    def _recall(self, gate: Gate, area: str, user: str, password: str) -> tuple[str, str] | None:
        memo = self._memo_key(area, user, password)
        entry = self._remembered.get(memo)
        if entry is None:
            return None
        signed_in, credential, expires = entry
        now = time.monotonic()
        if expires < now or gate.fingerprint(signed_in) != credential:
            del self._remembered[memo]  # expired, or the user/password changed since
            return None
        self._remembered[memo] = (signed_in, credential, now + REMEMBER_SECONDS)
        self._remembered.move_to_end(memo)
        return signed_in, credential

    def _remember(
        self, area: str, user: str, password: str, signed_in: str, credential: str
    ) -> None:
        self._remembered[self._memo_key(area, user, password)] = (
            signed_in,
            credential,
            time.monotonic() + REMEMBER_SECONDS,
        )
        while len(self._remembered) > REMEMBER_MAX:
            self._remembered.popitem(last=False)

    def prune(self) -> int:
        """Forget throttle rows nobody needs any more (runs in a thread, hourly)."""
        with Session(self._engine()) as session:
            return login_throttle.prune(session=session, now=self._clock())
