"""The rule engine (code). Rule packs (YAML data) live in the top-level rules/ folder."""
from .engine import evaluate
from .loader import load_pack, parse_pack
from .model import Rule, RulePack

__all__ = ["evaluate", "load_pack", "parse_pack", "Rule", "RulePack"]
