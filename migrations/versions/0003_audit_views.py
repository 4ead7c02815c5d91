"""audit views: run_durations, failures_by_day, last_success, run_chain, checklist_history

Views for the questions operators ask of the history in plain SQL (see
docs/schema.md).  They hold no data, so adding or dropping them is instant
and loses nothing.  SQLite and PostgreSQL differ only in date arithmetic.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-29 19:40:29.346353
"""
from alembic import op


revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None

VIEWS = ("run_durations", "failures_by_day", "last_success", "run_chain", "checklist_history")


def _seconds(start: str, end: str, dialect: str) -> str:
    """SQL for the seconds from one timestamp column to another (NULL if either is)."""
    if dialect == "postgresql":
        return f"ROUND(CAST(EXTRACT(EPOCH FROM ({end} - {start})) AS NUMERIC), 3)"
    return f"ROUND((julianday({end}) - julianday({start})) * 86400.0, 3)"


def _day(column: str, dialect: str) -> str:
    """SQL for the UTC calendar day of a timestamp column (timestamps are stored as UTC)."""
    if dialect == "postgresql":
        return f"CAST({column} AS DATE)"
    return f"date({column})"


def _count(condition: str) -> str:
    return f"SUM(CASE WHEN {condition} THEN 1 ELSE 0 END)"


def view_definitions(dialect: str) -> dict[str, str]:
    return {
        # every run with how long it waited to start and how long it ran
        "run_durations": f"""
            SELECT id, worker, state, launched_by, host, module, args, exit_code,
                   launched_at, started_at, finished_at,
                   {_seconds("started_at", "finished_at", dialect)} AS seconds,
                   {_seconds("launched_at", "started_at", dialect)} AS wait_seconds,
                   triggered_by, final_message_type, reason
            FROM worker_runs""",
        # runs per UTC day (of launch) and worker, by outcome; failures counts every unhappy end
        "failures_by_day": f"""
            SELECT {_day("launched_at", dialect)} AS day, worker,
                   COUNT(*) AS runs,
                   {_count("state = 'succeeded'")} AS succeeded,
                   {_count("state = 'failed'")} AS failed,
                   {_count("state = 'crashed'")} AS crashed,
                   {_count("state = 'died'")} AS died,
                   {_count("state = 'timed out'")} AS timed_out,
                   {_count("state = 'lost'")} AS lost,
                   {_count("state IN ('failed', 'crashed', 'died', 'timed out', 'lost')")} AS failures
            FROM worker_runs
            GROUP BY {_day("launched_at", dialect)}, worker""",
        # each worker's most recently finished successful run
        "last_success": f"""
            SELECT worker, id AS run_id, args, host, launched_by, launched_at, started_at, finished_at,
                   {_seconds("started_at", "finished_at", dialect)} AS seconds
            FROM (SELECT worker_runs.*,
                         ROW_NUMBER() OVER (PARTITION BY worker
                                            ORDER BY finished_at DESC, id DESC) AS newest
                  FROM worker_runs WHERE state = 'succeeded') AS succeeded
            WHERE newest = 1""",
        # for every run, itself (depth 0) and each run before it in its chain:
        # the run that sent the message that triggered it (depth 1), and so on
        "run_chain": """
            WITH RECURSIVE chain (run_id, depth, ancestor_id, triggered_by) AS (
                SELECT id, 0, id, triggered_by FROM worker_runs
                UNION ALL
                SELECT chain.run_id, chain.depth + 1, parent.id, parent.triggered_by
                FROM chain
                JOIN messages ON messages.id = chain.triggered_by
                JOIN worker_runs AS parent ON parent.id = messages.run_id
                WHERE chain.depth < 1000
            )
            SELECT chain.run_id, chain.depth, chain.ancestor_id,
                   worker_runs.worker AS ancestor_worker, worker_runs.state AS ancestor_state,
                   worker_runs.launched_by AS ancestor_launched_by,
                   worker_runs.launched_at AS ancestor_launched_at,
                   chain.triggered_by AS ancestor_triggered_by
            FROM chain JOIN worker_runs ON worker_runs.id = chain.ancestor_id""",
        # each checklist value and the time it held: from valid_from until
        # valid_until (NULL: still held); a clear holds no value
        "checklist_history": """
            SELECT id, key, operation, after AS value, at AS valid_from,
                   LEAD(at) OVER (PARTITION BY key ORDER BY id) AS valid_until,
                   message_id
            FROM checklist_mutations""",
    }


def upgrade():
    dialect = op.get_bind().dialect.name
    for name, select in view_definitions(dialect).items():
        op.execute(f"CREATE VIEW {name} AS {select}")


def downgrade():
    for name in reversed(VIEWS):
        op.execute(f"DROP VIEW IF EXISTS {name}")
