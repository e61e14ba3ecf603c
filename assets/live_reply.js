// The reply being streamed, rebuilt in the page from append-only frames, and the
// finished messages' fields the server did not send again.
//
// The backend (chatmon/states/live.py) sends LiveState.f as
// [seq, text] or, for a full frame, [seq, text, reply id]. A full frame replaces the
// text (the first frame of a reply, and answers to a resync); any other frame holds
// only the text new since frame seq - 1 and is appended. A frame out of sequence
// (after a reload or a reconnect, or two frames that reached the page between two
// renders) leaves the text as it is and asks the backend for the whole text once.
// One reply streams per tab at a time; what the page holds of it lives in this module
// (`live`), so the finished message can use it after the streaming bubble is gone.
//
// A finished message (chatmon/states/message_wire.py) comes without its fields that
// hold their defaults, and a reply whose text the frames carried comes as
// "live": [seq, tail] instead of "content": its text is what the page held at frame
// seq of that reply, then tail. chatmonMessage() fills both back in; while the page
// lacks that text it asks for a resync (after the reply, the chat state answers it by sending the text).
//
// The page renders the text with the same Markdown component as finished messages
// (raw HTML off, unsafe links dropped by react-markdown). useLiveReply also keeps the
// message list scrolled to the bottom while the reply grows, unless the reader has
// scrolled up.
import { useEffect, useLayoutEffect, useRef } from "react";
import { addEvents } from "$/utils/context";
import { ReflexEvent } from "$/utils/state";

const RESYNC_EVERY_MS = 1000; // the backend answers at most this often anyway
const NEAR_BOTTOM_PX = 60;
const KEPT_REPLIES = 1000; // finished replies' texts kept (the page shows at most 200)

// The reply in flight (or the last one), and the last frame object applied.
const live = { reply: null, seq: -1, text: "", frame: null, gap: false, asked: 0 };
// Finished replies' texts: reply id -> { seq, text } as of that reply's last frame.
const texts = new Map();
let wanted = false; // a finished message lacks its text: ask for a resync
let resyncName = null; // LiveState.resync's event name, from useLiveSync
// Messages without live text, filled in once per message object from the state.
const filled = new WeakMap();

export function applyFrame(state, frame) {
  if (!Array.isArray(frame) || frame.length < 2 || typeof frame[1] !== "string") {
    return;
  }
  const [seq, text, reply] = frame;
  if (typeof reply === "string") {
    if (reply === state.reply && seq <= state.seq) {
      return; // an older full frame than what is shown
    }
    state.reply = reply;
    state.seq = seq;
    state.text = text;
    state.gap = false;
  } else if (state.reply !== null && !state.gap && seq === state.seq + 1) {
    state.seq = seq;
    state.text += text;
  } else {
    state.gap = true; // missed frames (or this reply's first): keep what is shown, ask
  }
}

// Applies each frame object once, however many components read it (StrictMode
// renders twice with the same object). At first sight of a frame (a mount, after
// a reload) it only remembers it: it belongs to a reply that is not ours to append to.
function sync(frame) {
  if (frame === live.frame) {
    return;
  }
  const first = live.frame === null;
  live.frame = frame;
  if (first) {
    if (Array.isArray(frame) && typeof frame[2] === "string") {
      applyFrame(live, frame);
    }
    return;
  }
  applyFrame(live, frame);
  if (live.reply !== null && !live.gap) {
    if (texts.size >= KEPT_REPLIES && !texts.has(live.reply)) {
      texts.delete(texts.keys().next().value);
    }
    texts.set(live.reply, { seq: live.seq, text: live.text });
  }
}

function askForResync(resyncEvent) {
  const now = Date.now();
  if (now - live.asked >= RESYNC_EVERY_MS) {
    live.asked = now;
    wanted = false;
    addEvents([ReflexEvent(resyncEvent, {})]);
  }
}

// A message as the page renders it: defaults filled in, a reply's text rebuilt from
// the live frames. `frame` is LiveState.f (or null where the list never re-renders
// per frame). Without the text yet, content is "" and a resync is asked for.
export function chatmonMessage(message, defaults, frame) {
  if (frame !== null && frame !== undefined) {
    sync(frame);
  }
  if (message === null || typeof message !== "object") {
    return message;
  }
  if (!Array.isArray(message.live)) {
    let full = filled.get(message);
    if (full === undefined) {
      full = { ...defaults, ...message };
      filled.set(message, full);
    }
    return full;
  }
  const full = { ...defaults, ...message };
  const [seq, tail] = message.live;
  const held = texts.get(message.correlation_id);
  if (held && held.seq >= seq) {
    full.content = held.text + tail;
  } else {
    full.content = "";
    wanted = true;
    scheduleAsk();
  }
  delete full.live;
  return full;
}

// Asked from a render: the resync goes out from a timer, at most once a second.
let askTimer = null;
function scheduleAsk() {
  if (askTimer !== null || resyncName === null) {
    return;
  }
  const wait = Math.max(0, live.asked + RESYNC_EVERY_MS - Date.now());
  askTimer = setTimeout(() => {
    askTimer = null;
    if (wanted) {
      askForResync(resyncName);
    }
  }, wait);
}

// Always mounted on the chat page: applies every frame, and asks for the whole text
// when a frame was missed or a finished message lacks its text.
export function useLiveSync(frame, resyncEvent) {
  resyncName = resyncEvent;
  sync(frame);
  const gap = live.gap;
  useEffect(() => {
    if (gap || wanted) {
      askForResync(resyncEvent);
    }
  });
  return live.seq;
}

// The streaming bubble's text. It mounts afresh for every reply, when what this
// module holds is still the previous reply's (whose bubble unmounted: `ended`), or
// nothing after a reload: it shows nothing until a full frame starts a reply.
let ended = null;
export function useLiveReply(frame, resyncEvent, containerId) {
  const mounted = useRef(false);
  if (!mounted.current) {
    mounted.current = true;
    if (live.reply === ended) {
      live.seq = -1; // not ours to append to
      live.gap = false;
    }
  }
  sync(frame);
  const gap = live.gap;
  useEffect(() => {
    if (gap) {
      askForResync(resyncEvent);
    }
  });
  useEffect(
    () => () => {
      ended = live.reply;
    },
    [],
  );
  const text = live.reply !== ended ? live.text : "";
  useFollowBottom(containerId, text);
  return text;
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
