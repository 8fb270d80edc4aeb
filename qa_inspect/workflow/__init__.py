"""The QC workflow over the results database: manual sampling (人工抽检), review import
(复核), appeals (申诉), calibration. Their tables live in the results database next to the
results, on SQLite or PostgreSQL alike; every query is a store method
(``qa_inspect.store.workflow_sql``), so nothing here touches a connection.

For other reports: ``final_scores(store)`` gives every ok call's final score
(upheld appeal > manual review > machine) with where it came from.
"""
from qa_inspect.workflow.appeals import FinalScore, decide_appeal, final_scores, list_appeals, open_appeal
from qa_inspect.workflow.db import WorkflowError

__all__ = ["FinalScore", "WorkflowError", "decide_appeal", "final_scores", "list_appeals", "open_appeal"]
