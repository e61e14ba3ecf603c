"""The concurrency benchmark's figures: one round's result at N sessions, and the
``name: value (reference: value, ratio)`` lines printed for N (medians over rounds)."""

from __future__ import annotations

import statistics
from dataclasses import dataclass

from bench.figures import percentile


@dataclass
class LevelResult:
    """One N, one round."""

    n: int
    served: int
    chat: list[float]
    upstream: list[float]
    upstream_ok: int
    errors: list[str]
    bytes_per_reply_byte: list[float]
    live_bytes_per_reply_byte: list[float]
    peak_rss: int
    server_cpu: float  # CPU seconds the server tree used during the chat phase
    client_cpu: float  # CPU seconds this process (the N websocket clients) used meanwhile


def metric_line(name: str, value: str, reference: str, ratio: float) -> str:
    """One printed figure: ``name: value (reference: value, ratio R)``."""
    return f"{name}: {value} (reference: {reference}, ratio {ratio:.3f})"


def report(results: list[LevelResult], idle_rss: int, label: str) -> list[str]:
    """The benchmark's lines for one N: medians over rounds of each round's figure.

    Latencies count the sessions that were served; failed ones (timeouts after
    ``REPLY_TIMEOUT``) show in the served line instead.
    """
    n = results[0].n
    tag = f"[n={n}{label}]"

    def med(fn) -> float:
        return statistics.median(fn(r) for r in results)

    # Served: the total over all rounds, so one bad round is never hidden by a median.
    served, started = sum(r.served for r in results), n * len(results)
    lines = [
        metric_line(
            f"concurrency_sessions_served{tag}",
            f"{served} of {started}",
            f"{started} started",
            served / started,
        ),
    ]
    if all(r.chat for r in results) and all(r.upstream for r in results):
        for q in (50, 95):
            chat = med(lambda r, q=q: percentile(r.chat, q))
            upstream = med(lambda r, q=q: percentile(r.upstream, q))
            lines.append(
                metric_line(
                    f"concurrency_reply_p{q}{tag}",
                    f"{chat * 1000:.0f} ms",
                    f"upstream alone {upstream * 1000:.0f} ms",
                    chat / upstream,
                )
            )
            lines.append(
                metric_line(
                    f"concurrency_added_latency_p{q}{tag}",
                    f"{(chat - upstream) * 1000:.0f} ms",
                    f"upstream alone {upstream * 1000:.0f} ms",
                    (chat - upstream) / upstream,
                )
            )
    if all(r.bytes_per_reply_byte for r in results):
        ratio = med(lambda r: statistics.median(r.bytes_per_reply_byte))
        lines.append(
            metric_line(
                f"concurrency_update_bytes_per_reply_byte{tag}",
                f"{ratio:.2f}",
                "1 byte of reply text",
                ratio,
            )
        )
        live = med(lambda r: statistics.median(r.live_bytes_per_reply_byte))
        lines.append(
            metric_line(
                f"concurrency_live_frame_bytes_per_reply_byte{tag}",
                f"{live:.2f}",
                "1 byte of reply text",
                live,
            )
        )
    server_cpu = med(lambda r: r.server_cpu / n * 1000)
    client_cpu = med(lambda r: r.client_cpu / n * 1000)
    lines.append(
        metric_line(
            f"concurrency_server_cpu_per_session{tag}",
            f"{server_cpu:.0f} ms",
            f"bench clients {client_cpu:.0f} ms",
            server_cpu / client_cpu,
        )
    )
    peak = med(lambda r: r.peak_rss)
    lines.append(
        metric_line(
            f"concurrency_server_rss_peak{tag}",
            f"{peak / 2**20:.0f} MiB",
            f"idle {idle_rss / 2**20:.0f} MiB",
            peak / idle_rss,
        )
    )
    return lines
