"""How much text the process looks at: caps on log lines, client error reports, trace
payloads and websocket messages (README, "Limits").

Masking and redaction are linear, but linear in a megabyte is still milliseconds of
CPU on the event loop for every log line; these caps keep each piece of work small
whatever a client or a model sends. A cut text ends with ``…[truncated N chars]``.
A cut never splits something that must be masked: :func:`truncate` moves the cut
back to the start of any protected span (a secret, a piece of PII) that crosses it,
so the part kept is masked whole and the part dropped is never seen.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

LOG_MESSAGE_MAX_CHARS = 16_384  # one log line's message
LOG_TRACEBACK_MAX_CHARS = 65_536  # one log line's traceback or stack
CLIENT_ERROR_MAX_CHARS = 8_192  # each text of a frontend exception report
TRACE_TEXT_MAX_CHARS = 65_536  # each string in a trace (input, output, metadata)

# A websocket message must hold a chat message of MAX_MESSAGE_CHARS characters. The
# socket counts characters of the JSON text; JSON escapes a control character as
# ``\u0001``, six characters for one. The headroom is for the event's name, its router
# data and every other event a page sends (a few hundred characters each).
JSON_CHARS_PER_CHAR = 6
SOCKET_HEADROOM_CHARS = 64 * 1024

# How far around a cut protected spans are looked for (the longest secret or piece of
# PII that can cross the cut and still be found whole).
CUT_WINDOW_CHARS = 1024

Spans = Callable[[str], Iterable[tuple[int, int]]]


def socket_max_message_chars(max_message_chars: int) -> int:
    """The websocket's maximum message size for chat messages of ``max_message_chars``."""
    return max_message_chars * JSON_CHARS_PER_CHAR + SOCKET_HEADROOM_CHARS


def truncation_marker(dropped: int) -> str:
    """What replaces the ``dropped`` characters cut off a text."""
    return f"…[truncated {dropped} chars]"


def truncate(
    text: str, limit: int, *, protect: Spans | None = None, window: int = CUT_WINDOW_CHARS
) -> str:
    """``text`` cut to its first ``limit`` characters (or fewer) plus a marker.

    Args:
        text: any text; returned unchanged when it is no longer than ``limit``.
        limit: how many characters of ``text`` may be kept.
        protect: finds the spans of a text that must not be split (secrets, PII); it
            only ever sees ``window`` characters either side of the cut.
        window: see ``protect``.
    """
    if len(text) <= limit:
        return text
    cut = limit
    if protect is not None:
        low = max(0, limit - window)
        spans = sorted(protect(text[low : limit + window]), reverse=True)
        for start, end in spans:  # right to left: a moved cut is checked against the rest
            if low + start < cut < low + end:
                cut = low + start
    return text[:cut] + truncation_marker(len(text) - cut)
