"""The rule engine (code). Rule packs (YAML data) live in the top-level rules/ folder."""
from qa_inspect.rules.engine import evaluate
from qa_inspect.rules.loader import load_pack, parse_pack
from qa_inspect.rules.model import Rule, RulePack

__all__ = ["evaluate", "load_pack", "parse_pack", "Rule", "RulePack"]
