"""The review queue's lists: what waits for a decision, what the rules ignored, what was decided."""

from sqlalchemy import func
from sqlalchemy.orm import joinedload

from ..extensions import db
from ..models import UnreadableEmail

# Which list of the queue, and the mail it holds.
LISTS = {
    "pending": ("Por revisar", lambda m: (m.status == "unparsed", m.decision.is_(None))),
    "ignored": (
        "Descartados por las reglas",
        lambda m: (m.status == "ignored", m.decision.is_(None)),
    ),
    "decided": ("Resueltos", lambda m: (m.decision.is_not(None),)),
}


def mail_select(user_id: int, shown: str):
    """The user's kept mail of one list, newest first."""
    return (
        db.select(UnreadableEmail)
        .where(UnreadableEmail.user_id == user_id, *LISTS[shown][1](UnreadableEmail))
        # Each row names its account: load it with the row.
        .options(joinedload(UnreadableEmail.email_account))
        .order_by(UnreadableEmail.sent_at.desc().nulls_last(), UnreadableEmail.id.desc())
    )


def counts(user_id: int) -> dict[str, int]:
    """How many mails each list holds, in one query."""
    m = UnreadableEmail
    rows = db.session.execute(
        db.select(m.status, m.decision.is_not(None), func.count())
        .where(m.user_id == user_id)
        .group_by(m.status, m.decision.is_not(None))
    ).all()
    found = dict.fromkeys(LISTS, 0)
    for status, decided, count in rows:
        found["decided" if decided else "pending" if status == "unparsed" else "ignored"] += count
    return found


def pending_count(user_id: int) -> int:
    """The mail waiting for the user's decision: the count in the navigation."""
    m = UnreadableEmail
    return db.session.scalar(
        db.select(func.count())
        .select_from(m)
        .where(m.user_id == user_id, m.status == "unparsed", m.decision.is_(None))
    )


def rereadable(user_id: int):
    """The pending mail whose message was kept, to read again after a parser update."""
    m = UnreadableEmail
    return (
        db.select(m)
        .where(
            m.user_id == user_id,
            m.status == "unparsed",
            m.decision.is_(None),
            m.raw_message.is_not(None),
        )
        .options(joinedload(m.email_account))
    )
