// Empties the composer once the message it sent is accepted (chatmon/components/composer.py).
//
// The server accepts a send by showing it as ChatState.question (only a send from the
// composer sets it); a refused message stays in the box, as the notice explains. The
// box is emptied only after a submit of its own form from this page: a question
// arriving with the page's state (a reload, a reconnect) never empties it.
import { useEffect, useRef } from "react";

let submitted = false;
if (typeof window !== "undefined") {
  window.addEventListener("submit", (event) => {
    if (event.target instanceof HTMLFormElement && event.target.elements["message"]) {
      submitted = true;
    }
  });
}

export function useClearAfterSend(questionId, boxId) {
  const seen = useRef(questionId);
  useEffect(() => {
    if (questionId === seen.current) {
      return;
    }
    seen.current = questionId;
    const box = document.getElementById(boxId);
    if (submitted && questionId !== undefined && questionId !== null && box) {
      submitted = false;
      box.value = "";
    }
  }, [questionId, boxId]);
  return questionId;
}
