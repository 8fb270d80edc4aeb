"""The QC workflow over the results database: manual sampling (人工抽检), review import
(复核), appeals (申诉), calibration. Tables live in the same SQLite file as the results
(see ``workflow.db``); the store's own tables are never changed.

For other reports: ``final_scores(store)`` gives every ok call's final score
(upheld appeal > manual review > machine) with where it came from.
"""
from qa_inspect.workflow.appeals import FinalScore, decide_appeal, final_scores, list_appeals, open_appeal
from qa_inspect.workflow.db import WorkflowError

__all__ = ["FinalScore", "WorkflowError", "decide_appeal", "final_scores", "list_appeals", "open_appeal"]
