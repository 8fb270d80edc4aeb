"""The `qa-inspect` command line: the root group (``main``) and one module per command group."""
from qa_inspect.cli.main import main
from qa_inspect.cli import batch, kpi, learn, report, review, rules, web  # noqa: F401  (each registers its commands)

report.register(main)
review.register(main)
web.register(main)
kpi.register(main)

__all__ = ["main"]
