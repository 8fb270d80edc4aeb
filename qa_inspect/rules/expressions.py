"""Rule composition expressions: ``a and not (b or c)``, ``1 of (a, b)``, ``all of (a, b)`` over
a rule's named conditions, parsed into ``rules.model.Expr``."""
from __future__ import annotations

import re

from qa_inspect.rules.model import EXPR_KEYWORDS, Expr

__all__ = ["parse_expression"]


_TOKEN = re.compile(r"\s*(?:(\()|(\))|(,)|(\d+)|([A-Za-z_][A-Za-z0-9_]*)|(\S))")


class _ExprError(Exception):
    pass


def parse_expression(text: str) -> Expr:
    """Parse ``a and not (b or c)``, ``1 of (a, b)``, ``all of (a, b)`` (recursive descent;
    ``not`` binds tighter than ``and``, ``and`` tighter than ``or``). Raises ValueError."""
    toks: list[tuple[str, str, int]] = []  # (kind, text, column)
    pos = 0
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if m is None or m.group(0).strip() == "":
            break
        col = m.start() + len(m.group(0)) - len(m.group(0).lstrip()) + 1
        kinds = ("(", ")", ",", "int", "word", "bad")
        kind = next(k for k, g in zip(kinds, m.groups()) if g is not None)
        word = m.group(0).strip()
        if kind == "bad":
            raise ValueError(f"unexpected character {word!r} at column {col}")
        if kind == "word" and word in EXPR_KEYWORDS:
            kind = word
        toks.append((kind, word, col))
        pos = m.end()
    i = 0

    def peek() -> str:
        return toks[i][0] if i < len(toks) else "end"

    def where() -> str:
        return f"{toks[i][1]!r} at column {toks[i][2]}" if i < len(toks) else "end of expression"

    def expect(kind: str) -> tuple[str, str, int]:
        nonlocal i
        if peek() != kind:
            raise _ExprError(f"expected {kind!r}, got {where()}")
        i += 1
        return toks[i - 1]

    def or_() -> Expr:
        items = [and_()]
        while peek() == "or":
            expect("or")
            items.append(and_())
        return items[0] if len(items) == 1 else Expr("or", items=tuple(items))

    def and_() -> Expr:
        items = [unary()]
        while peek() == "and":
            expect("and")
            items.append(unary())
        return items[0] if len(items) == 1 else Expr("and", items=tuple(items))

    def unary() -> Expr:
        if peek() == "not":
            expect("not")
            return Expr("not", items=(unary(),))
        return primary()

    def group() -> tuple[Expr, ...]:
        expect("(")
        items = [or_()]
        while peek() == ",":
            expect(",")
            items.append(or_())
        expect(")")
        return tuple(items)

    def primary() -> Expr:
        k = peek()
        if k == "(":
            expect("(")
            e = or_()
            expect(")")
            return e
        if k == "word":
            return Expr("name", name=expect("word")[1])
        if k == "all":
            expect("all")
            expect("of")
            items = group()
            return items[0] if len(items) == 1 else Expr("and", items=items)
        if k == "int":
            _, num, col = expect("int")
            expect("of")
            items = group()
            n = int(num)
            if not 1 <= n <= len(items):
                raise _ExprError(f"'{n} of' needs 1 ≤ N ≤ {len(items)} (the number of items), at column {col}")
            return Expr("of", n=n, items=items)
        raise _ExprError(f"expected a condition name, 'not', '(', 'N of' or 'all of', got {where()}")

    if not toks:
        raise ValueError("empty expression")
    try:
        e = or_()
        if i < len(toks):
            raise _ExprError(f"unexpected {where()}")
    except _ExprError as err:
        raise ValueError(str(err)) from None
    return e
