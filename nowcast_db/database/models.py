"""Tables.  Their names and columns are a public interface: operators write SQL
against them (see docs/schema.md)."""
from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import JSON, Boolean, DateTime, ForeignKey, Index, Integer, MetaData, String, Text, false, text
from sqlalchemy.dialects import postgresql
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

from nowcast_db.database import values

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UTCDateTime(TypeDecorator):
    """Stored as naive UTC (sortable text on SQLite), returned timezone-aware."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is None:
            return None
        if value.tzinfo is not None:
            value = value.astimezone(dt.timezone.utc).replace(tzinfo=None)
        return value

    def process_result_value(self, value, dialect):
        if value is None:
            return None
        return value.replace(tzinfo=dt.timezone.utc)


class Value(TypeDecorator):
    """A YAML value kept losslessly as JSON (JSONB on PostgreSQL); see values.py."""

    impl = JSON(none_as_null=True)
    cache_ok = True

    def load_dialect_impl(self, dialect):
        if dialect.name == "postgresql":
            return dialect.type_descriptor(postgresql.JSONB(none_as_null=True))
        return dialect.type_descriptor(JSON(none_as_null=True))

    def process_bind_param(self, value, dialect):
        return values.encode_value(value)

    def process_result_value(self, value, dialect):
        return values.decode(value)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class MessageRow(Base):
    """One message received, with the reply sent and any error."""

    __tablename__ = "messages"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    message_id: Mapped[str] = mapped_column(String(64), unique=True)
    received_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, index=True)
    source: Mapped[str | None] = mapped_column(String(200))
    type: Mapped[str | None] = mapped_column(String(200))
    payload: Mapped[Any] = mapped_column(Value, nullable=True)
    raw: Mapped[str | None] = mapped_column(Text)
    reply_type: Mapped[str] = mapped_column(String(200))
    reply_payload: Mapped[Any] = mapped_column(Value, nullable=True)
    run_id: Mapped[int | None] = mapped_column(
        ForeignKey("worker_runs.id", ondelete="SET NULL", use_alter=True), index=True
    )
    error: Mapped[str | None] = mapped_column(Text)
    # true for a crash the manager made up for a run that died or timed out
    synthesized: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())

    __table_args__ = (
        Index("ix_messages_source_type", "source", "type"),
        # nowcast-tui's filters, newest first (migration 0006)
        Index("ix_messages_source_id", "source", "id"),
        Index("ix_messages_type_id", "type", "id"),
        Index("ix_messages_errors", "id", sqlite_where=text("error IS NOT NULL"),
              postgresql_where=text("error IS NOT NULL")),
    )


class WorkerRun(Base):
    """One worker launch, or one hand-started run seen through its messages."""

    __tablename__ = "worker_runs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    worker: Mapped[str] = mapped_column(String(200))
    module: Mapped[str | None] = mapped_column(String(400))
    args: Mapped[Any] = mapped_column(Value, nullable=True)
    host: Mapped[str] = mapped_column(String(200))
    launched_by: Mapped[str] = mapped_column(String(20))
    # who asked for an operator or scheduler launch (client name and host)
    requested_by: Mapped[str | None] = mapped_column(String(200))
    triggered_by: Mapped[int | None] = mapped_column(
        ForeignKey("messages.id", ondelete="SET NULL"), index=True
    )
    state: Mapped[str] = mapped_column(String(20), index=True)
    command: Mapped[Any] = mapped_column(Value, nullable=True)
    pid: Mapped[int | None] = mapped_column(Integer)
    exit_code: Mapped[int | None] = mapped_column(Integer)
    final_message_type: Mapped[str | None] = mapped_column(String(200))
    reason: Mapped[str | None] = mapped_column(Text)
    # the per-run file the worker's stdout and stderr were captured to (launched runs only)
    output_path: Mapped[str | None] = mapped_column(String(1000))
    launched_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, index=True)
    started_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    finished_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)

    __table_args__ = (
        Index("ix_worker_runs_worker_launched_at", "worker", "launched_at"),
        # nowcast-tui's worker filter, newest first (migration 0006)
        Index("ix_worker_runs_worker_id", "worker", "id"),
    )


class ChecklistEntry(Base):
    """The current value of one checklist key (the registry's `checklist key`)."""

    __tablename__ = "checklist"

    key: Mapped[str] = mapped_column(String(400), primary_key=True)
    value: Mapped[Any] = mapped_column(Value, nullable=True)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    message_id: Mapped[int | None] = mapped_column(ForeignKey("messages.id", ondelete="SET NULL"))


class ChecklistMutation(Base):
    """One change to one checklist key, and the message that caused it."""

    __tablename__ = "checklist_mutations"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    key: Mapped[str] = mapped_column(String(400), index=True)
    operation: Mapped[str] = mapped_column(String(20))
    before: Mapped[Any] = mapped_column(Value, nullable=True)
    after: Mapped[Any] = mapped_column(Value, nullable=True)
    message_id: Mapped[int | None] = mapped_column(
        ForeignKey("messages.id", ondelete="SET NULL"), index=True
    )
    at: Mapped[dt.datetime] = mapped_column(UTCDateTime, index=True)


class ManagerStateRow(Base):
    """Manager state that must survive a restart (race-condition holds, heartbeat)."""

    __tablename__ = "manager_state"

    name: Mapped[str] = mapped_column(String(100), primary_key=True)
    value: Mapped[Any] = mapped_column(Value, nullable=True)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
