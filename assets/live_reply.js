// The reply being streamed, rebuilt in the page from append-only frames.
//
// The backend (chatmon/states/live.py) sends LiveState.f as
// [seq, text] or, for a full frame, [seq, text, reply id]. A full frame replaces the
// text (the first frame of a reply, and answers to a resync); any other frame holds
// only the text new since frame seq - 1 and is appended. A frame out of sequence
// (after a reload or a reconnect, or two frames that reached the page between two
// renders) leaves the text as it is and asks the backend for the whole text once.
// The bubble mounts afresh for every reply; the frame it finds then is the previous
// reply's last one (or [] after a reload), so only a full frame is taken at mount.
//
// The hook returns the text; the page renders it with the same Markdown component
// as finished messages (raw HTML off, unsafe links dropped by react-markdown).
// It also keeps the message list scrolled to the bottom while the reply grows,
// unless the reader has scrolled up.
import { useEffect, useLayoutEffect, useRef } from "react";
import { addEvents } from "$/utils/context";
import { ReflexEvent } from "$/utils/state";

const RESYNC_EVERY_MS = 1000; // the backend answers at most this often anyway
const NEAR_BOTTOM_PX = 60;

export function applyFrame(live, frame, mounting) {
  if (!Array.isArray(frame) || frame.length < 2 || typeof frame[1] !== "string") {
    return;
  }
  const [seq, text, reply] = frame;
  if (typeof reply === "string") {
    if (reply === live.reply && seq <= live.seq) {
      return; // an older full frame than what is shown
    }
    live.reply = reply;
    live.seq = seq;
    live.text = text;
    live.gap = false;
  } else if (mounting) {
    live.seq = -1; // whatever this belongs to, it is not ours to append to
  } else if (live.reply !== null && seq === live.seq + 1) {
    live.seq = seq;
    live.text += text;
  } else if (live.reply === null || seq > live.seq) {
    live.gap = true; // missed frames: keep what is shown, ask for the rest
  }
}

export function useLiveReply(frame, resyncEvent, containerId) {
  const ref = useRef(null);
  if (ref.current === null) {
    ref.current = { reply: null, seq: -1, text: "", frame: null, gap: false, asked: 0 };
  }
  const live = ref.current;
  // Applied while rendering: each frame object is applied once (StrictMode renders
  // twice with the same object), and no frame waits for an effect to show.
  if (frame !== live.frame) {
    const mounting = live.frame === null;
    live.frame = frame;
    applyFrame(live, frame, mounting);
  }
  const gap = live.gap;
  useEffect(() => {
    const now = Date.now();
    if (gap && now - live.asked >= RESYNC_EVERY_MS) {
      live.asked = now;
      addEvents([ReflexEvent(resyncEvent, {})]);
    }
  });
  useFollowBottom(containerId, live.text);
  return live.text;
}

// Scroll the container to its bottom when the text grows, if the reader was there.
function useFollowBottom(containerId, text) {
  const pinned = useRef(true);
  useEffect(() => {
    const container = document.getElementById(containerId);
    if (!container) {
      return undefined;
    }
    const onScroll = () => {
      const distance =
        container.scrollHeight - container.scrollTop - container.clientHeight;
      pinned.current = distance < NEAR_BOTTOM_PX;
    };
    container.addEventListener("scroll", onScroll, { passive: true });
    return () => container.removeEventListener("scroll", onScroll);
  }, [containerId]);
  useLayoutEffect(() => {
    const container = document.getElementById(containerId);
    if (container && pinned.current) {
      container.scrollTop = container.scrollHeight;
    }
  }, [containerId, text]);
}
