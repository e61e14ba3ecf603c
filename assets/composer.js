// The chat composer's length limit, enforced in the page (chatmon/pages/chat.py).
//
// The server reads websocket messages only up to what a message of MAX_MESSAGE_CHARS
// needs and drops a connection that sends more, so an over-long message must never
// leave the page. While the box holds text, a counter shows "N / limit"; over the
// limit it turns red, a notice says by how much, and sending is stopped before the
// form's handler runs. The text stays in the box. The limit comes from the page
// (data-max-chars on #message, the server's MAX_MESSAGE_CHARS).
(() => {
  const BOX = "message";
  const COUNTER = "composer-counter";
  const NOTICE = "composer-too-long";
  const format = (n) => n.toLocaleString("en-US");

  // Characters as the server counts them (code points): only counted when the
  // cheaper UTF-16 length is over the limit, as a surrogate pair counts twice there.
  const lengthOf = (text, limit) => {
    if (text.length <= limit) return text.length;
    let pairs = 0;
    for (const _ of text.matchAll(/[\uD800-\uDBFF][\uDC00-\uDFFF]/g)) pairs += 1;
    return text.length - pairs;
  };

  const show = (id, text) => {
    const element = document.getElementById(id);
    if (element && element.textContent !== text) element.textContent = text;
    return element;
  };

  // Shows the counter and notice for the box; returns whether it is over its limit.
  const render = (box) => {
    const limit = Number(box.dataset.maxChars);
    if (!Number.isFinite(limit) || limit <= 0) return false;
    const length = lengthOf(box.value, limit);
    const over = length > limit;
    const counter = show(COUNTER, length > 0 ? `${format(length)} / ${format(limit)}` : "");
    if (counter) counter.dataset.over = String(over);
    show(
      NOTICE,
      over
        ? `Your message is ${format(length)} characters long; the limit is ` +
            `${format(limit)}. Please shorten it.`
        : "",
    );
    return over;
  };

  window.addEventListener(
    "input",
    (event) => {
      if (event.target instanceof HTMLElement && event.target.id === BOX) render(event.target);
    },
    true,
  );

  // Capture phase on window: runs before React's handlers, so an over-long message
  // never reaches the form's on_submit (the Send button and Enter both submit).
  window.addEventListener(
    "submit",
    (event) => {
      const box = event.target instanceof HTMLFormElement && event.target.elements[BOX];
      if (box instanceof HTMLTextAreaElement && render(box)) {
        event.preventDefault();
        event.stopImmediatePropagation();
        box.focus();
      }
    },
    true,
  );

  // The server empties the box after a message is sent, which fires no input event.
  window.setInterval(() => {
    const box = document.getElementById(BOX);
    if (box instanceof HTMLTextAreaElement) render(box);
  }, 300);
})();
