"""The rule engine (code). Rule packs (YAML data) live in the top-level rules/ folder.

Rooms: ``model`` (the rule records), ``loader`` (YAML → pack), ``phonetics`` (pinyin sounds),
``fuzzy`` (edit-distance windows), ``matching`` (one condition on one turn), ``index`` (the
Aho-Corasick phrase index), ``engine`` (a pack on a call), ``explain`` (text for rule authors),
``examples`` (a pack's own tests), ``evaluation`` (against labelled calls)."""
from qa_inspect.rules.engine import (context_turns, describe_condition, evaluate, evaluate_rule, find, match_context,
                                     metric_evidence, scope_turns)
from qa_inspect.rules.explain import evidence_line, evidence_terms, explain_call, mark, mmss, scope_lines
from qa_inspect.rules.index import CallIndex, PackIndex, pack_index
from qa_inspect.rules.loader import load_pack, parse_pack
from qa_inspect.rules.matching import PreparedTurn, prepare
from qa_inspect.rules.model import Condition, Rule, RulePack

__all__ = ["evaluate", "evaluate_rule", "find", "context_turns", "match_context", "scope_turns",
           "describe_condition", "metric_evidence", "explain_call", "evidence_line", "evidence_terms", "scope_lines", "mark",
           "mmss", "CallIndex", "PackIndex", "pack_index", "load_pack", "parse_pack", "PreparedTurn", "prepare",
           "Condition", "Rule", "RulePack"]
