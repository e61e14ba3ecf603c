"""A reply's rating and its optional reasons and comment.

:class:`FeedbackMixin` is a Reflex state mixin of :class:`chatmon.states.chat.ChatState`
(the page's ``chat.rate``, ``chat.close_feedback_form``, ``chat.submit_feedback``).
Each saved rating is also published as one :class:`~chatmon.services.events.Feedback`.
"""

from __future__ import annotations

import reflex as rx

from chatmon import db
from chatmon.services import chat_messages, events
from chatmon.services import conversations as convo
from chatmon.services.events import Feedback
from chatmon.states import args
from chatmon.states.chat_base import ChatBase


class FeedbackMixin(ChatBase, mixin=True):
    """Thumbs up / down, and the reason/comment form a rating opens."""

    @rx.event
    async def rate(self, message_id: int, rating: int) -> None:
        """Thumbs up (+1) / down (-1); clicking the same thumb again clears it."""
        owner, wanted = await self._allowed_owner(), args.whole_number(message_id)
        if owner is None or wanted is None or args.whole_number(rating) not in (-1, 1):
            return
        shown = next((m for m in self._shown() if m.id == wanted), None)
        if shown is None:
            return
        new_rating = 0 if shown.feedback == rating else rating
        try:
            await db.run(
                chat_messages.set_feedback, owner_id=owner, message_id=wanted, rating=new_rating
            )
        except (convo.ConversationNotFound, ValueError):
            return
        self._replace_shown(wanted, feedback=new_rating, feedback_reasons="", feedback_comment="")
        # a rating opens the optional form for reasons (thumbs-down) and a comment
        self.feedback_form_for = wanted if new_rating else 0
        events.publish_feedback(
            Feedback(
                correlation_id=shown.correlation_id,
                session_id=owner,
                rating=new_rating,
            )
        )

    @rx.event
    def close_feedback_form(self) -> None:
        """Dismiss the reason/comment form (the rating stays)."""
        self.feedback_form_for = 0

    @rx.event
    async def submit_feedback(self, form_data: dict) -> None:
        """Reasons (thumbs-down only) and a comment for the reply whose form is open.

        The form sends ``reason-<n>`` fields whose values must each be one of
        ``feedback.REASONS`` and a ``comment`` of at most ``MAX_COMMENT_CHARS``; anything
        else, a reply that is not this browser's or not rated, is ignored.
        """
        owner, wanted = await self._allowed_owner(), self.feedback_form_for
        comment_text = args.form_text(form_data, "comment")
        if owner is None or not wanted or comment_text is None or not isinstance(form_data, dict):
            return
        comment = args.feedback_comment(comment_text)
        chosen = args.feedback_reasons(
            [v for k, v in form_data.items() if isinstance(k, str) and k.startswith("reason-")]
        )
        if comment is None or chosen is None:
            return
        shown = next((m for m in self._shown() if m.id == wanted), None)
        if shown is None or shown.feedback not in (-1, 1):
            return
        rating = shown.feedback
        reasons = chosen if rating == -1 else ()
        try:
            await db.run(
                chat_messages.set_feedback,
                owner_id=owner,
                message_id=wanted,
                rating=rating,
                reasons=reasons,
                comment=comment,
            )
        except (convo.ConversationNotFound, ValueError):
            return
        self._replace_shown(wanted, feedback_reasons=",".join(reasons), feedback_comment=comment)
        self.feedback_form_for = 0
        events.publish_feedback(
            Feedback(
                correlation_id=shown.correlation_id,
                session_id=owner,
                rating=rating,
                reasons=reasons,
                comment=comment,
                rating_changed=False,
            )
        )
