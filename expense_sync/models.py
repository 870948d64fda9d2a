"""Typed models: users, email accounts, sync sessions, expenses and bank mail to review."""

import secrets
from datetime import UTC, datetime
from decimal import Decimal
from typing import TYPE_CHECKING

from flask_login import UserMixin
from sqlalchemy import (
    JSON,
    BigInteger,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from .extensions import Base, db
from .parsing import PARSER_VERSION
from .parsing.registry import bank_choices, load_banks
from .states import AccountStatus, SessionStatus

if TYPE_CHECKING:
    Model = Base  # to a type checker db.Model is the typed declarative base it extends
else:
    Model = db.Model

CASH, CASH_NAME = "cash", "Efectivo"
ORIGINS = {
    "mail": "Leído del correo",
    "review": "Registrado desde un correo por revisar",
    "manual": "Agregado a mano",
}
DECISIONS = ("registered", "dismissed")
TRIGGERS = ("manual", "schedule", "cli")


def now_utc() -> datetime:
    return datetime.now(UTC)


def bank_names() -> dict[str, str]:
    """Bank code -> the name people know it by, in the order they look for it.

    Read from the parser registry on every call, never kept: a bank is a module there, and
    one registered after import is offered too.
    """
    return dict(bank_choices())


def _bank_name(code: str) -> str:
    parser = load_banks().get(code)
    return parser.name if parser else code  # a code no module registers shows as itself


def new_token() -> str:
    return secrets.token_urlsafe(32)


class UTCDateTime(TypeDecorator):
    """Timezone-aware UTC datetimes on every database (SQLite drops the zone otherwise)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is not None:
            if value.tzinfo is None:
                raise ValueError("naive datetime given to a UTCDateTime column")
            value = value.astimezone(UTC)
        return value

    def process_result_value(self, value, dialect):
        if value is not None and value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return value


class User(UserMixin, Model):
    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(254), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    is_admin: Mapped[bool] = mapped_column(default=False)
    # Part of the login id: rotating it on logout invalidates every copied session cookie.
    session_nonce: Mapped[str] = mapped_column(String(64), default=new_token)
    # "Sincronizar automáticamente": minutes between scheduled syncs (None: off) and when the
    # next is due. The dispatcher claims a user by moving next_auto_sync_at past now.
    auto_sync_minutes: Mapped[int | None] = mapped_column(Integer)
    next_auto_sync_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now_utc)

    accounts: Mapped[list["EmailAccount"]] = relationship(
        back_populates="user", cascade="all, delete-orphan", order_by="EmailAccount.id"
    )

    def get_id(self) -> str:
        return f"{self.id}:{self.session_nonce}"


class EmailAccount(Model):
    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("user.id", ondelete="CASCADE"), index=True)
    bank: Mapped[str] = mapped_column(String(20))
    address: Mapped[str] = mapped_column(String(254))
    source_kind: Mapped[str] = mapped_column(String(10), default="imap")
    imap_host: Mapped[str | None] = mapped_column(String(255))
    imap_port: Mapped[int | None] = mapped_column(Integer)
    imap_security: Mapped[str | None] = mapped_column(String(10))
    imap_user: Mapped[str | None] = mapped_column(String(255))
    # Fernet token; the plaintext never touches the database, a log or a job argument.
    imap_password_encrypted: Mapped[bytes | None] = mapped_column(LargeBinary)
    # OAuth2 sign-in instead of a password ("google", "microsoft"); its tokens are Fernet
    # tokens too. No refresh token left means the grant was revoked: the user reconnects.
    oauth_provider: Mapped[str | None] = mapped_column(String(20))
    oauth_refresh_token_encrypted: Mapped[bytes | None] = mapped_column(LargeBinary)
    oauth_access_token_encrypted: Mapped[bytes | None] = mapped_column(LargeBinary)
    oauth_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # SHA-256 (hex) of the one certificate trusted for this server: a private server's own.
    tls_fingerprint: Mapped[str | None] = mapped_column(String(64))
    folder: Mapped[str] = mapped_column(String(255), default="INBOX")
    local_path: Mapped[str | None] = mapped_column(Text)
    # Durable sync checkpoint, committed with every batch.
    uidvalidity: Mapped[int | None] = mapped_column(BigInteger)
    last_uid: Mapped[int] = mapped_column(BigInteger, default=0)
    uidvalidity_changes: Mapped[int] = mapped_column(Integer, default=0)
    # The parsers that read the stored outcomes; older ones mean the folder is read again.
    # Accounts from before versions existed were read by version 1; a new account has read
    # nothing, so no older parser owes it anything.
    parser_version: Mapped[int] = mapped_column(
        Integer, default=PARSER_VERSION, server_default=text("1")
    )
    # Mail up to this UID was read before the current re-read: its stored rows are redone.
    reread_until_uid: Mapped[int] = mapped_column(BigInteger, default=0, server_default=text("0"))
    last_synced_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now_utc)

    user: Mapped[User] = relationship(back_populates="accounts")

    @property
    def bank_name(self) -> str:
        return _bank_name(self.bank)

    @property
    def needs_reconnect(self) -> bool:
        """An OAuth2 account whose grant was revoked: only signing in again opens it."""
        return bool(self.oauth_provider) and self.oauth_refresh_token_encrypted is None

    @property
    def location(self) -> str:
        """Where the mail comes from, for display."""
        if self.source_kind == "imap":
            return f"{self.imap_host}:{self.imap_port} · {self.folder}"
        return self.local_path or ""


class SyncSession(Model):
    id: Mapped[int] = mapped_column(primary_key=True)
    token: Mapped[str] = mapped_column(String(64), unique=True, default=new_token)
    user_id: Mapped[int] = mapped_column(ForeignKey("user.id", ondelete="CASCADE"))
    status: Mapped[str] = mapped_column(String(12), default=SessionStatus.PENDING)
    # TRIGGERS: what started it (the button, the schedule, the command line).
    trigger: Mapped[str] = mapped_column(String(10), default="manual", server_default="manual")
    total_emails: Mapped[int] = mapped_column(Integer, default=0)
    processed_emails: Mapped[int] = mapped_column(Integer, default=0)
    detected_expenses: Mapped[int] = mapped_column(Integer, default=0)
    error_count: Mapped[int] = mapped_column(Integer, default=0)
    error_message: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now_utc)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    # Accounts are always shown with their session, so load them in the same query.
    accounts: Mapped[list["SyncSessionAccount"]] = relationship(
        back_populates="sync_session",
        cascade="all, delete-orphan",
        lazy="selectin",
        order_by="SyncSessionAccount.id",
    )

    __table_args__ = (
        Index("ix_sync_session_user_created", "user_id", "created_at"),
        # One sync at a time per user, enforced by the database itself. The condition spells
        # out SessionStatus.ACTIVE: changing that set takes a migration of this index.
        Index(
            "uq_sync_session_one_active",
            "user_id",
            unique=True,
            sqlite_where=text("status IN ('pending', 'running', 'paused')"),
            postgresql_where=text("status IN ('pending', 'running', 'paused')"),
        ),
    )


class SyncSessionAccount(Model):
    id: Mapped[int] = mapped_column(primary_key=True)
    sync_session_id: Mapped[int] = mapped_column(
        ForeignKey("sync_session.id", ondelete="CASCADE"), index=True
    )
    email_account_id: Mapped[int] = mapped_column(
        ForeignKey("email_account.id", ondelete="CASCADE"), index=True
    )
    status: Mapped[str] = mapped_column(String(12), default=AccountStatus.PENDING)
    total_emails: Mapped[int] = mapped_column(Integer, default=0)
    processed_emails: Mapped[int] = mapped_column(Integer, default=0)
    detected_expenses: Mapped[int] = mapped_column(Integer, default=0)
    error_count: Mapped[int] = mapped_column(Integer, default=0)
    error_kind: Mapped[str | None] = mapped_column(String(20))
    error_message: Mapped[str | None] = mapped_column(Text)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    sync_session: Mapped[SyncSession] = relationship(back_populates="accounts")
    # The widget shows the bank name of every row: load the account with the row.
    email_account: Mapped[EmailAccount] = relationship(lazy="joined")

    __table_args__ = (UniqueConstraint("sync_session_id", "email_account_id"),)


class Expense(Model):
    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("user.id", ondelete="CASCADE"))
    # None for an expense typed by hand (cash): no mailbox told us of it.
    email_account_id: Mapped[int | None] = mapped_column(
        ForeignKey("email_account.id", ondelete="CASCADE"), index=True
    )
    sync_session_id: Mapped[int | None] = mapped_column(
        ForeignKey("sync_session.id", ondelete="SET NULL"), index=True
    )
    # Message-ID, or a hash of the raw message when it has none. An expense registered
    # from the review queue keeps its mail's key, so a later parse of that mail adds
    # nothing; one typed by hand has none.
    message_key: Mapped[str | None] = mapped_column(String(255))
    # bank:reference:authorization; the same bank transaction (original and forward) once.
    transaction_key: Mapped[str | None] = mapped_column(String(255))
    # A bank code, or CASH for money paid in cash.
    bank: Mapped[str] = mapped_column(String(20))
    kind: Mapped[str] = mapped_column(String(20))
    direction: Mapped[str] = mapped_column(String(3))
    # Minor units (céntimos, cents): exact on every database, sums stay exact.
    amount_cents: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    merchant: Mapped[str | None] = mapped_column(String(255))
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime)
    card_last4: Mapped[str | None] = mapped_column(String(4))
    authorization: Mapped[str | None] = mapped_column(String(64))
    reference: Mapped[str | None] = mapped_column(String(64))
    # ORIGINS: read by a parser, registered by the user from a mail, or typed by hand.
    origin: Mapped[str] = mapped_column(String(10), default="mail", server_default="mail")
    category: Mapped[str | None] = mapped_column(String(60))
    note: Mapped[str | None] = mapped_column(Text)
    # What the mail said of each field the user corrected, e.g. {"merchant": "AMZN MKTP"}.
    original_values: Mapped[dict | None] = mapped_column(JSON)
    corrected_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # A deleted expense read from mail stays as a tombstone: re-reading the folder (a new
    # parser version) would otherwise bring it back.
    deleted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now_utc)

    email_account: Mapped[EmailAccount | None] = relationship()

    __table_args__ = (
        UniqueConstraint("email_account_id", "message_key", name="uq_expense_message"),
        UniqueConstraint("user_id", "transaction_key", name="uq_expense_transaction"),
        Index("ix_expense_user_occurred", "user_id", "occurred_at"),
    )

    @property
    def amount(self) -> Decimal:
        return Decimal(self.amount_cents).scaleb(-2)

    @property
    def bank_name(self) -> str:
        return CASH_NAME if self.bank == CASH else _bank_name(self.bank)

    @property
    def from_mail(self) -> bool:
        return self.origin == "mail"


class UnreadableEmail(Model):
    """Bank mail that gave no expense: unreadable (`unparsed`) mail, which waits in the
    review queue for the user's decision, and mail the rules `ignored`, kept so the user
    can look at it and overrule them."""

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("user.id", ondelete="CASCADE"), index=True)
    email_account_id: Mapped[int] = mapped_column(
        ForeignKey("email_account.id", ondelete="CASCADE")
    )
    sync_session_id: Mapped[int | None] = mapped_column(
        ForeignKey("sync_session.id", ondelete="SET NULL"), index=True
    )
    message_key: Mapped[str] = mapped_column(String(255))
    # The parser's outcome: "unparsed" or "ignored".
    status: Mapped[str] = mapped_column(String(10), default="unparsed", server_default="unparsed")
    bank: Mapped[str | None] = mapped_column(String(20))
    sender: Mapped[str | None] = mapped_column(String(254))
    subject: Mapped[str | None] = mapped_column(Text)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    reason: Mapped[str] = mapped_column(Text)
    # The mail's readable text (never its HTML), for the user to read in the queue.
    text: Mapped[str | None] = mapped_column(Text)
    # The raw message, zlib-compressed, of unparsed mail: "Volver a leer" parses it again.
    raw_message: Mapped[bytes | None] = mapped_column(LargeBinary)
    # DECISIONS: the user registered it as an expense, or said it is no movement of money.
    decision: Mapped[str | None] = mapped_column(String(12))
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now_utc)

    email_account: Mapped[EmailAccount] = relationship()

    __table_args__ = (
        UniqueConstraint("email_account_id", "message_key", name="uq_unreadable_message"),
    )
