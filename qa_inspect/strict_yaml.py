"""Strict YAML for rule packs, scorecards and sampling plans.

A document is read with every mapping remembering its line (``YamlMap``), duplicate keys
rejected, and every problem reported as a ``RuleError`` carrying file:line. Hostile input fails
fast and small (issue 17), each limit with one readable line:

- document size (``MAX_DOCUMENT_CHARS``),
- nesting depth (``MAX_DEPTH``; PyYAML's composer is recursive, so 20,000 nested levels would
  otherwise end in RecursionError),
- expanded size through aliases (``MAX_EXPANDED_NODES``; an alias "billion laughs" bomb is a few
  hundred bytes of YAML that expands to gigabytes when the loader's caller walks or prints it),
- tags: only plain YAML (strings, numbers, booleans, null, lists, mappings, dates); ``!!python/…``
  and any other non-standard tag are refused before anything is constructed.

Each limit can be raised for one process with an environment variable of the same name
prefixed ``QA_INSPECT_YAML_`` (e.g. ``QA_INSPECT_YAML_MAX_DEPTH=128``).
"""
from __future__ import annotations

import difflib
import os
import re
from dataclasses import dataclass, field
from typing import Any

import yaml

from qa_inspect.errors import RuleError

__all__ = ["YamlMap", "YamlSeq", "ParseContext", "line_of", "check_keys", "read_strict_yaml",
           "read_strict_mapping", "raise_problems", "limit", "MAX_DOCUMENT_CHARS", "MAX_DEPTH",
           "MAX_EXPANDED_NODES"]

MAX_DOCUMENT_CHARS = 2_000_000  # shipped packs are ~20 kB
MAX_DEPTH = 64  # shipped packs nest about 8 levels
MAX_EXPANDED_NODES = 200_000  # nodes counted with every alias expanded; shipped packs ~3,000

_STANDARD_TAGS = {f"tag:yaml.org,2002:{t}" for t in ("str", "int", "float", "bool", "null", "map", "seq",
                                                      "timestamp", "merge")}


def limit(name: str) -> int:
    """The limit ``name`` (e.g. "MAX_DEPTH"), from ``QA_INSPECT_YAML_<name>`` when set."""
    raw = os.environ.get(f"QA_INSPECT_YAML_{name}")
    if raw:
        try:
            return max(1, int(raw))
        except ValueError:
            pass
    return int(globals()[name])


class YamlMap(dict):
    """A mapping that remembers its line and the line of each key."""

    line: int = 0
    key_lines: dict[str, int]

    @classmethod
    def empty(cls, line: int = 0) -> "YamlMap":
        m = cls()
        m.line, m.key_lines = line, {}
        return m


class YamlSeq(list):
    """A list that remembers its line and the line of each item."""

    line: int = 0
    item_lines: list[int]


class _StrictLoader(yaml.SafeLoader):
    """SafeLoader whose mappings remember their line and refuse duplicate keys, with the limits
    of this module checked while the document is composed (before anything is constructed)."""

    def __init__(self, stream) -> None:
        super().__init__(stream)
        self._depth = 0
        self._max_depth = limit("MAX_DEPTH")

    def _where(self, mark) -> str:
        return f"{self.name}:{mark.line + 1 if mark else 0}"

    def compose_node(self, parent, index):
        if self.check_event(yaml.AliasEvent):
            return super().compose_node(parent, index)
        event = self.peek_event()
        tag = getattr(event, "tag", None)
        if tag is not None and tag != "!" and tag not in _STANDARD_TAGS:
            raise RuleError(f"YAML tag {tag.replace('tag:yaml.org,2002:', '!!')} is not allowed "
                            "(only plain YAML: text, numbers, true/false, lists, mappings)",
                            self._where(event.start_mark))
        self._depth += 1
        try:
            if self._depth > self._max_depth:
                raise RuleError(f"YAML nested deeper than {self._max_depth} levels "
                                "(set QA_INSPECT_YAML_MAX_DEPTH to allow more)", self._where(event.start_mark))
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1

    def compose_document(self):
        node = super().compose_document()
        if node is not None:
            _check_expanded(node, self.name)
        return node


def _check_expanded(root: yaml.Node, file: str) -> None:
    """Raise when the document, with every alias expanded, has more than MAX_EXPANDED_NODES
    nodes (each distinct node is counted once, so this is linear in the document)."""
    cap = limit("MAX_EXPANDED_NODES")
    size: dict[int, int] = {}
    # iterative post-order walk (no recursion: depth is bounded, but stay safe)
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    visiting: set[int] = set()
    while stack:
        node, done = stack.pop()
        k = id(node)
        if done:
            visiting.discard(k)
            kids = _children(node)
            total = 1 + sum(size[id(c)] for c in kids)
            size[k] = total
            if total > cap:
                raise RuleError(f"YAML expands to more than {cap:,} values through aliases (&/*); "
                                "an alias bomb? (set QA_INSPECT_YAML_MAX_EXPANDED_NODES to allow more)",
                                f"{file}:{node.start_mark.line + 1}")
            continue
        if k in size:
            continue
        if k in visiting:
            raise RuleError("YAML alias refers to itself (a recursive structure)", f"{file}:{node.start_mark.line + 1}")
        visiting.add(k)
        stack.append((node, True))
        stack.extend((c, False) for c in _children(node) if id(c) not in size)


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.SequenceNode):
        return node.value
    if isinstance(node, yaml.MappingNode):
        return [x for pair in node.value for x in pair]
    return []


def _construct_mapping(loader: _StrictLoader, node: yaml.MappingNode, deep: bool = False) -> YamlMap:
    m = YamlMap.empty(node.start_mark.line + 1)
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        line = key_node.start_mark.line + 1
        try:
            hash(key)
        except TypeError:
            raise RuleError("a mapping key must be plain text or a number", f"{loader.name}:{line}") from None
        if key in m:
            raise RuleError(f"duplicate key '{key}' (first at line {m.key_lines[str(key)]})",
                            f"{loader.name}:{line}")
        m[key] = loader.construct_object(value_node, deep=True)
        m.key_lines[str(key)] = line
    return m


def _construct_sequence(loader: _StrictLoader, node: yaml.SequenceNode, deep: bool = False) -> YamlSeq:
    s = YamlSeq(loader.construct_object(child, deep=True) for child in node.value)
    s.line = node.start_mark.line + 1
    s.item_lines = [child.start_mark.line + 1 for child in node.value]
    return s


_StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)
_StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_SEQUENCE_TAG, _construct_sequence)


@dataclass
class ParseContext:
    """Collects every problem of one file (``err``), so a file is checked whole in one run.
    ``variables``: a rule pack's ``${name}`` substitutions (unused elsewhere)."""

    file: str
    problems: list[RuleError] = field(default_factory=list)
    variables: dict[str, str] = field(default_factory=dict)

    def err(self, line: int, msg: str) -> None:
        self.problems.append(RuleError(msg, f"{self.file}:{line}"))


def line_of(m: Any, key: str | None = None) -> int:
    """The line of ``m`` (a ``YamlMap``), or of its ``key``; 0 when unknown."""
    if isinstance(m, YamlMap):
        return m.key_lines.get(key, m.line) if key else m.line
    return 0


def check_keys(ctx: ParseContext, m: YamlMap, allowed: set[str], what: str) -> None:
    """An error per key of ``m`` not in ``allowed``, with a did-you-mean hint when one is close."""
    for k in m:
        if k not in allowed:
            hint = ""
            close = difflib.get_close_matches(str(k), sorted(allowed), n=1)
            if close:
                hint = f"; did you mean '{close[0]}'?"
            ctx.err(line_of(m, k), f"{what}: unknown key '{k}'{hint} (allowed: {', '.join(sorted(allowed))})")


_BRACKETS = re.compile(r"[\[\]{}\n]")


def _check_flow_depth(text: str, file: str) -> None:
    """Refuse deeply nested flow collections (``[[[…`` / ``{a: {a: …``) before PyYAML's scanner
    sees them: it keeps a pending simple key per open level and rescans them per token, so 20,000
    levels take seconds before the composer's depth limit is reached. Brackets inside quoted
    strings count too, so this bound is loose (4 × MAX_DEPTH) and the composer stays the
    precise check."""
    cap, depth, line = 4 * limit("MAX_DEPTH"), 0, 1
    for m in _BRACKETS.finditer(text):
        c = m.group(0)
        if c == "\n":
            line += 1
        elif c in "[{":
            depth += 1
            if depth > cap:
                raise RuleError(f"YAML nested deeper than {limit('MAX_DEPTH')} levels "
                                "(set QA_INSPECT_YAML_MAX_DEPTH to allow more)", f"{file}:{line}")
        elif depth:
            depth -= 1


def read_strict_yaml(text: str, file: str):
    """The YAML document with line numbers kept (``YamlMap``), duplicate keys rejected; a syntax
    error, a duplicate key or a limit of this module raises RuleError with file:line. Packs,
    scorecards and sampling plans are all read with it."""
    cap = limit("MAX_DOCUMENT_CHARS")
    if len(text) > cap:
        raise RuleError(f"YAML document too large ({len(text):,} characters, limit {cap:,}; "
                        "set QA_INSPECT_YAML_MAX_DOCUMENT_CHARS to allow more)", f"{file}:1")
    _check_flow_depth(text, file)
    loader = _StrictLoader(text)
    loader.name = file
    try:
        return loader.get_single_data()
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        line = mark.line + 1 if mark else 0
        raise RuleError(f"YAML syntax error: {getattr(e, 'problem', e)}", f"{file}:{line}") from None
    except RecursionError:  # a limit above was raised too far for this interpreter's stack
        raise RuleError("YAML nested too deeply", f"{file}:0") from None
    finally:
        loader.dispose()


def read_strict_mapping(text: str, file: str, not_a_mapping: str) -> tuple["YamlMap | None", list[RuleError]]:
    """``read_strict_yaml`` for a file whose top level must be a mapping: (the mapping, []) or
    (None, [the one problem]); ``not_a_mapping`` is the message when it is something else."""
    try:
        doc = read_strict_yaml(text, file)
    except RuleError as e:
        return None, [e]
    if not isinstance(doc, YamlMap):
        return None, [RuleError(not_a_mapping, f"{file}:1")]
    return doc, []


def raise_problems(problems: list[RuleError], source: str) -> None:
    """Raise the one problem, or one RuleError listing them all (one per line, file:line)."""
    if len(problems) == 1:
        raise problems[0]
    if problems:
        raise RuleError(f"{len(problems)} problems:\n" + "\n".join(str(e) for e in problems), source)
