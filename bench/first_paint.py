"""Time to the first token painted in Chromium, against the upstream's own first token.

    python -m bench.first_paint [--turns 10] [--latency 0.2]

One idle chatmon prod server (as ``bench.concurrency`` starts it) and the fake upstream
in its own process. Per turn, side by side:

- the reference: one streaming completion straight to the fake, timed from the request to
  its first content chunk (the upstream's own time to first token);
- one message typed into the chat page in Chromium (Debian's, headless), timed in the page
  from the Send click to the first animation frame after the streaming bubble first shows
  reply text (the first token painted), and to the finished reply.

Prints medians: ``first_paint_added_p50`` is the page's first-token time minus the
upstream's (BENCHMARKS.md #2, target <= 50 ms), and the whole reply's added time.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import httpx

from bench.servers import SYSTEM_PROMPT, chatmon_server, fake_llm

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]

# Clicks Send and resolves with [ms to first painted reply text, ms to finished reply].
TURN = """
async (text) => {
  const input = document.querySelector('#message');
  const setter = Object.getOwnPropertyDescriptor(HTMLTextAreaElement.prototype, 'value').set;
  setter.call(input, text);
  input.dispatchEvent(new Event('input', {bubbles: true}));
  const before = document.querySelectorAll('.bubble-assistant:not(.bubble-streaming)').length;
  return await new Promise((resolve) => {
    let first = null;
    const started = performance.now();
    const observer = new MutationObserver(() => {
      const body = document.querySelector('#streaming-reply .message-body');
      if (first === null && body && body.innerText.trim()) {
        first = -1;
        requestAnimationFrame(() => { first = performance.now() - started; });
      }
      const done = document.querySelectorAll('.bubble-assistant:not(.bubble-streaming)');
      if (done.length > before && first !== null && first >= 0) {
        observer.disconnect();
        resolve([first, performance.now() - started]);
      }
    });
    observer.observe(document.body, {subtree: true, childList: true, characterData: true});
    document.querySelector('#send-button').click();
  });
}
"""


def upstream_first_token(url: str, text: str) -> tuple[float, float]:
    """(seconds to the first content chunk, seconds to [DONE]) of one direct call.

    Synchronous: Playwright's sync API already runs an event loop in this thread.
    """
    body = {
        "model": "fake",
        "stream": True,
        "stream_options": {"include_usage": True},
        "messages": [
            {"role": "system", "content": SYSTEM_PROMPT},
            {"role": "user", "content": text},
        ],
    }
    with httpx.Client(timeout=60) as client:
        started = time.perf_counter()
        first = None
        with client.stream("POST", url + "/chat/completions", json=body) as response:
            for line in response.iter_lines():
                if first is None and '"content"' in line:
                    first = time.perf_counter() - started
                if line == "data: [DONE]":
                    return first or 0.0, time.perf_counter() - started
    raise RuntimeError("no [DONE]")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--turns", type=int, default=10)
    parser.add_argument("--latency", type=float, default=0.2)
    parser.add_argument("--reply-words", type=int, default=30)
    args = parser.parse_args(argv)
    from playwright.sync_api import sync_playwright

    with (
        tempfile.TemporaryDirectory(prefix="chatmon-paint-") as tmp,
        fake_llm(
            latency=args.latency, tokens_per_second=50, reply_words=args.reply_words
        ) as fake_url,
        chatmon_server(workdir=Path(tmp), fake_llm_url=fake_url, env_overrides={}) as server,
        sync_playwright() as pw,
    ):
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page()
        page.goto(server.url + "/")
        page.wait_for_selector("#message:not([disabled])")
        page.evaluate(TURN, "warm up")  # the first call is the cold one
        page.wait_for_selector("#send-button")
        paint, done, up_first, up_done = [], [], [], []
        for turn in range(args.turns):
            text = f"paint turn {turn}"
            first, total = upstream_first_token(fake_url, text)
            up_first.append(first * 1000)
            up_done.append(total * 1000)
            painted, finished = page.evaluate(TURN, text)
            paint.append(painted)
            done.append(finished)
            page.wait_for_selector("#send-button")
        browser.close()
    first_added = statistics.median(p - u for p, u in zip(paint, up_first, strict=True))
    done_added = statistics.median(d - u for d, u in zip(done, up_done, strict=True))
    print(
        f"# {args.turns} turns, upstream latency {args.latency} s, {args.reply_words} words; "
        f"load average {os.getloadavg()[0]:.1f}"
    )
    ref = statistics.median(up_first)
    print(
        f"first_paint_ms_p50: {statistics.median(paint):.0f} ms "
        f"(reference: upstream first token {ref:.0f} ms, "
        f"ratio {statistics.median(paint) / ref:.3f})"
    )
    print(
        f"first_paint_added_p50: {first_added:.0f} ms "
        f"(reference: upstream first token {ref:.0f} ms, ratio {first_added / ref:.3f})"
    )
    ref_done = statistics.median(up_done)
    print(
        f"first_paint_reply_added_p50: {done_added:.0f} ms "
        f"(reference: upstream whole reply {ref_done:.0f} ms, ratio {done_added / ref_done:.3f})"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
