"""The review queue over HTTP: /api/feedback(.csv), the audited conversation read and the
FEEDBACK_REVIEW switch, through the real access middleware on a real database."""

from __future__ import annotations

import base64
import csv
import io
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session, select
from starlette.testclient import TestClient

from chatmon.api import api
from chatmon.middleware import ApiAccessMiddleware
from chatmon.models import ChatMessage, Conversation, FeedbackReviewAudit
from chatmon.services import auth, request_log
from tests.units.access_config import Configure
from tests.units.services.stats_factory import make_call, record

ALICE_HASH = auth.hash_password("pw", iterations=1000)
ALICE = {"authorization": "Basic " + base64.b64encode(b"alice:pw").decode()}

Client = Callable[..., TestClient]


@pytest.fixture
def make_client(
    engine: Engine, access_config: Configure, monkeypatch: pytest.MonkeyPatch
) -> Client:
    """``make_client(**settings)``: the routes table behind the monitor gate (user alice),
    with one rated reply ("r2", model "=evil") after two earlier messages."""
    monkeypatch.setattr("chatmon.db.get_engine", lambda: engine)
    now = datetime.now(UTC)
    with Session(engine) as session:
        record(
            session,
            make_call(at=now - timedelta(minutes=5), correlation_id="r2", model="=evil"),
            make_call(at=now - timedelta(minutes=9), correlation_id="r1"),
        )
        request_log.record_feedback(
            session=session, correlation_id="r2", rating=-1, reasons=("wrong", "too slow")
        )
        request_log.record_feedback(session=session, correlation_id="r1", rating=1)
        session.add(Conversation(id="conv1", owner_id="owner-key"))
        session.flush()
        parent: int | None = None  # each message follows the one before it
        for role, content, cid in [
            ("user", "mail me at ann@example.com", None),
            ("assistant", "bad answer", "r2"),
        ]:
            message = ChatMessage(
                conversation_id="conv1",
                role=role,
                content=content,
                correlation_id=cid,
                parent_id=parent,
            )
            session.add(message)
            session.flush()
            parent = message.id
        session.commit()

    def make(**overrides: object) -> TestClient:
        settings = access_config(monitor_users=f"alice:{ALICE_HASH}", **overrides)
        for module in ("chatmon.routes.feedback", "chatmon.routes.feedback_page"):
            monkeypatch.setattr(f"{module}.get_settings", lambda: settings)
        return TestClient(ApiAccessMiddleware(api))

    return make


def test_feedback_needs_the_monitor_login(make_client: Client) -> None:
    client = make_client()
    for path in ("/api/feedback", "/api/feedback.csv", "/api/feedback/views"):
        assert client.get(path).status_code == 401
    assert client.get("/api/feedback/conversation", params={"id": "r2"}).status_code == 401


def test_feedback_rows_worst_first(make_client: Client) -> None:
    body = make_client().get("/api/feedback", params={"order": "worst"}, headers=ALICE).json()
    assert body["window"] == "24h" and body["order"] == "worst" and body["review"] is True
    assert [(r["correlation_id"], r["rating"]) for r in body["rows"]] == [
        ("r2", "down"),
        ("r1", "up"),
    ]
    assert body["rows"][0]["owner"] == "browser-1"


@pytest.mark.parametrize(
    "params",
    [
        {"rating": "meh"},
        {"order": "best"},
        {"limit": "0"},
        {"window": "2y"},
        {"by": "x"},
        {"reason": "slow"},
    ],
)
def test_feedback_bad_parameters_are_400(make_client: Client, params: dict[str, str]) -> None:
    response = make_client().get("/api/feedback", params=params, headers=ALICE)
    assert response.status_code == 400 and response.json()["error"]


def test_feedback_csv_neutralises_text_cells(make_client: Client) -> None:
    response = make_client().get("/api/feedback.csv", params={"rating": "down"}, headers=ALICE)
    assert response.headers["content-type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(response.text)))
    assert rows[0][:4] == ["correlation_id", "started_at", "rating", "model"]
    assert len(rows) == 2 and rows[1][0] == "r2" and rows[1][3] == "'=evil"


def test_conversation_read_is_redacted_and_audited_with_the_reader(
    make_client: Client, engine: Engine
) -> None:
    client = make_client()
    body = client.get("/api/feedback/conversation", params={"id": "r2"}, headers=ALICE).json()
    assert [m["content"] for m in body["messages"]] == ["mail me at [EMAIL]", "bad answer"]
    assert body["redacted"] is True and body["messages"][-1]["rated"] is True
    views = client.get("/api/feedback/views", headers=ALICE).json()["views"]
    assert [(v["viewer"], v["conversation_id"], v["correlation_id"]) for v in views] == [
        ("alice", "conv1", "r2")
    ]


def test_conversation_unredacted_when_redaction_is_off(make_client: Client) -> None:
    client = make_client(enable_pii_redaction=False)
    body = client.get("/api/feedback/conversation", params={"id": "r2"}, headers=ALICE).json()
    assert body["messages"][0]["content"] == "mail me at ann@example.com"


def test_review_off_refuses_the_conversation_and_records_nothing(
    make_client: Client, engine: Engine
) -> None:
    client = make_client(feedback_review=False)
    response = client.get("/api/feedback/conversation", params={"id": "r2"}, headers=ALICE)
    assert response.status_code == 404 and "FEEDBACK_REVIEW" in response.json()["error"]
    assert client.get("/api/feedback", headers=ALICE).json()["review"] is False
    with Session(engine) as session:
        assert session.exec(select(FeedbackReviewAudit)).all() == []


@pytest.mark.parametrize("params", [{}, {"id": "r2'; --"}, {"id": "r2", "x": "1"}])
def test_conversation_bad_id_is_400(make_client: Client, params: dict[str, str]) -> None:
    response = make_client().get("/api/feedback/conversation", params=params, headers=ALICE)
    assert response.status_code == 400


def test_conversation_unknown_id_is_404(make_client: Client) -> None:
    response = make_client().get("/api/feedback/conversation", params={"id": "zz"}, headers=ALICE)
    assert response.status_code == 404


def test_review_page_lists_rows_escaped_with_links(make_client: Client) -> None:
    response = make_client().get("/api/feedback/review", headers=ALICE)
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/html")
    assert "id='review-rows'" in response.text and "=evil" in response.text
    assert "?window=24h" not in response.text  # only the parameters given are kept
    assert "href='?id=r2'" in response.text


def test_review_page_escapes_model_names(make_client: Client, engine: Engine) -> None:
    with Session(engine) as session:
        record(session, make_call(at=datetime.now(UTC), correlation_id="r3", model="<b>x</b>"))
        request_log.record_feedback(session=session, correlation_id="r3", rating=-1)
        session.commit()
    text = make_client().get("/api/feedback/review", headers=ALICE).text
    assert "<b>x</b>" not in text and "&lt;b&gt;x&lt;/b&gt;" in text


def test_review_page_opens_a_conversation_and_lists_the_read(make_client: Client) -> None:
    client = make_client()
    text = client.get("/api/feedback/review", params={"id": "r2"}, headers=ALICE).text
    assert "mail me at [EMAIL]" in text and "ann@example.com" not in text
    assert "(PII redacted)" in text
    audit = text.split("id='review-audit'")[1]
    assert "<td>alice</td><td>conv1</td><td>r2</td>" in audit


def test_review_page_with_review_off_has_no_links_and_refuses_id(make_client: Client) -> None:
    client = make_client(feedback_review=False)
    text = client.get("/api/feedback/review", headers=ALICE).text
    assert "id='review-off'" in text and "review-open" not in text
    response = client.get("/api/feedback/review", params={"id": "r2"}, headers=ALICE)
    assert response.status_code == 404 and "bad answer" not in response.text


def test_review_page_needs_the_login_and_valid_filters(make_client: Client) -> None:
    client = make_client()
    assert client.get("/api/feedback/review").status_code == 401
    response = client.get("/api/feedback/review", params={"window": "<x>"}, headers=ALICE)
    assert response.status_code == 400 and "<x>" not in response.text


def test_feedback_filtered_by_reason_in_json_csv_and_the_page(make_client: Client) -> None:
    client = make_client()
    body = client.get("/api/feedback", params={"reason": "too slow"}, headers=ALICE).json()
    assert [(r["correlation_id"], r["reasons"]) for r in body["rows"]] == [
        ("r2", ["wrong", "too slow"])
    ]
    assert (
        client.get("/api/feedback", params={"reason": "unsafe"}, headers=ALICE).json()["rows"] == []
    )
    response = client.get("/api/feedback.csv", params={"reason": "wrong"}, headers=ALICE)
    rows = list(csv.reader(io.StringIO(response.text)))
    assert rows[0][-2:] == ["reasons", "signals"] and rows[1][-2:] == ["wrong;too slow", ""]
    page = client.get("/api/feedback/review", params={"reason": "wrong"}, headers=ALICE).text
    assert "<option selected>wrong</option>" in page
    assert "<td class='review-reasons'>wrong, too slow</td>" in page
    assert "r1" not in page.split("id='review-rows'")[1].split("</table>")[0]
