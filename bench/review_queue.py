"""How long the review queue's query takes on a big request log (SQLite).

    python -m bench.review_queue [ROWS]

Writes ROWS requests over 7 days (default 200 000, one in ten rated) into a throw-away
SQLite database and prints the median time of ``rated_replies`` for 24h and 7d windows,
newest and worst first, limit 100.
"""

from __future__ import annotations

import os
import random
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

from sqlalchemy import insert
from sqlmodel import Session

from chatmon.db import make_engine
from chatmon.migrate import upgrade_head
from chatmon.models import LLMRequest
from chatmon.services import feedback_review


def main(rows: int) -> None:
    url = f"sqlite:///{Path(tempfile.mkdtemp()) / 'bench.db'}"
    upgrade_head(url)
    engine = make_engine(url)
    end = datetime.now(UTC)
    rng = random.Random(1)
    values = [
        {
            "correlation_id": f"b{i:015d}",
            "session_id": f"owner-{i % 500}",
            "conversation_id": f"c{i % 5000}",
            "model": rng.choice(["m-a", "m-b", "m-c"]),
            "started_at": end - timedelta(seconds=rng.uniform(0, 7 * 86400)),
            "latency_seconds": rng.uniform(0.2, 8.0),
            "status": "ok" if rng.random() > 0.05 else "error",
            "prompt_version": rng.choice(["v1", "v2"]),
            "feedback": rng.choice([1, -1]) if rng.random() < 0.1 else None,
            "priced": True,
            "retries": 0,
            "temperature": 0.7,
        }
        for i in range(rows)
    ]
    with engine.begin() as connection:
        connection.execute(insert(LLMRequest), values)
    for label, window in (("24h", timedelta(hours=24)), ("7d", timedelta(days=7))):
        for order in feedback_review.ORDERS:
            times = []
            for _ in range(5):
                with Session(engine) as session:
                    t0 = time.perf_counter()
                    feedback_review.rated_replies(
                        session=session, start=end - window, end=end, order=order, limit=100
                    )
                    times.append(time.perf_counter() - t0)
            print(f"{rows} rows, window {label}, {order}: {statistics.median(times) * 1000:.1f} ms")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 200_000)
