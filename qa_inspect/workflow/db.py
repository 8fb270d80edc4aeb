"""What the workflow modules share: their error and the time stamp they record.

The workflow's tables and queries live in the store (``qa_inspect.store.workflow_sql``), so
sampling, review, appeals and calibration run the same on SQLite and PostgreSQL; the
workflow modules call store methods only.
"""
from __future__ import annotations

from datetime import datetime, timezone

from qa_inspect.errors import QAError


class WorkflowError(QAError):
    """A sampling plan, worksheet, review or appeal cannot be used as given."""


def now_iso() -> str:
    return datetime.now(timezone.utc).replace(microsecond=0).isoformat()
