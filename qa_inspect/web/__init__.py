"""The review workspace (`qa-inspect serve`): a FastAPI application over the results store.

``create_app(db)`` builds it; ``auth.POLICY`` is the one place roles are checked; routes
(``api``: JSON, ``pages``: Jinja2) parse, authorize and call ``qa_inspect.workflow``.
"""
from qa_inspect.web.app import create_app

__all__ = ["create_app"]
