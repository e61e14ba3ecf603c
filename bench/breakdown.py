"""Where a tab's websocket bytes go: every update of one turn, classified.

``python -m bench.concurrency --breakdown`` keeps the updates one tab receives
(:attr:`bench.reflex_client.ReflexSession.update_log`) and prints them with
:func:`table`. An update is ``{"delta": {substate: {var: value}}, "events": [...],
"final": ...}`` as Reflex serialises it; its bytes (compact JSON, as
:mod:`bench.reflex_client` counts them) are split into:

* one row per changed var (``substate.var``: its ``"name":value`` member), and for the
  chat's message lists the text of the messages (``content``, or the tail of a reply
  sent as ``live``) apart from their other fields (``chat.answer [text]`` /
  ``chat.answer [fields]``), so a second copy of the reply shows;
* the live reply's frames (``live.f``), with their reply text apart from the envelope;
* one row per event the server sent back (by name), and the envelope: braces, the
  substate names, ``final`` and the rest.
"""

from __future__ import annotations

import json
from collections import defaultdict
from typing import Any

VAR_SUFFIX = "_rx_state_"
MESSAGE_LISTS = {"messages", "recent", "question", "answer"}


def _size(value: Any) -> int:
    return len(json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode())


def _member(name: str, value: Any) -> int:
    """Bytes of ``"name":value`` plus its comma."""
    return _size({name: value}) - 2 + 1


def classify(size: int, update: dict[str, Any]) -> dict[str, int]:
    """The update's ``size`` bytes by what they carry (the rows add up to ``size``)."""
    rows: dict[str, int] = defaultdict(int)
    for substate, changes in (update.get("delta") or {}).items():
        short = substate.rsplit(".", 1)[-1]
        for var, value in changes.items():
            name = f"{short}.{var.removesuffix(VAR_SUFFIX)}"
            total = _member(var, value)
            text = _text_bytes(short, var.removesuffix(VAR_SUFFIX), value)
            if text is None:
                rows[name] += total
            else:
                rows[f"{name} [text]"] += text
                rows[f"{name} [fields]"] += total - text
    for event in update.get("events") or []:
        rows[f"event {event.get('name', '?')}"] += _size(event) + 1
    rows["envelope"] += size - sum(rows.values())
    return dict(rows)


def _text_bytes(substate: str, var: str, value: Any) -> int | None:
    """JSON bytes of the reply/message text inside ``value``, when it carries any."""
    if substate == "live" and var == "f" and isinstance(value, list) and len(value) >= 2:
        return _size(value[1])
    if substate == "chat" and var in MESSAGE_LISTS and isinstance(value, list) and value:
        return sum(_message_text(m) for m in value if isinstance(m, dict))
    return None


def _message_text(message: dict[str, Any]) -> int:
    """Bytes of its ``content``, or of the tail a ``live`` entry carries instead."""
    if "content" in message:
        return _size(message["content"])
    live = message.get("live")
    return _size(live[1]) if isinstance(live, list) and len(live) == 2 else 0


def table(log: list[tuple[int, dict[str, Any]]], reply_bytes: int) -> list[str]:
    """Lines: each update (bytes, what it changed), then the bytes per row, summed."""
    lines = [f"#   {'update':>6} {'bytes':>6}  carries"]
    totals: dict[str, int] = defaultdict(int)
    counts: dict[str, int] = defaultdict(int)
    for index, (size, update) in enumerate(log):
        rows = classify(size, update)
        for name, value in rows.items():
            totals[name] += value
            counts[name] += 1
        carried = ", ".join(f"{n} {v}" for n, v in rows.items() if n != "envelope")
        lines.append(f"#   {index:>6} {size:>6}  {carried or '-'} (envelope {rows['envelope']})")
    everything = sum(size for size, _ in log)
    lines.append(f"#   {'bytes':>7} {'updates':>7} {'per reply byte':>14}  row")
    for name, value in sorted(totals.items(), key=lambda item: -item[1]):
        lines.append(f"#   {value:>7} {counts[name]:>7} {value / reply_bytes:>14.2f}  {name}")
    lines.append(
        f"#   {everything:>7} {len(log):>7} {everything / reply_bytes:>14.2f}  "
        f"all ({reply_bytes} bytes of reply text)"
    )
    return lines
