"""LogQL text -> syntax tree (ast.py). Loki's grammar, the subset of API.md; anything else is
refused with `Unsupported` naming the construct."""

from __future__ import annotations

import re
from typing import cast

from shopkeeper.logs.query import ast
from shopkeeper.logs.query.errors import ParseError, Unsupported
from shopkeeper.logs.query.lexer import Token, tokenize

_BINARY_PRECEDENCE = {
    "or": 1,
    "and": 2,
    "unless": 2,
    "==": 3,
    "!=": 3,
    ">": 3,
    ">=": 3,
    "<": 3,
    "<=": 3,
    "+": 4,
    "-": 4,
    "*": 5,
    "/": 5,
    "%": 5,
    "^": 6,
}
_COMPARISONS = frozenset({"==", "!=", ">", ">=", "<", "<="})
_LINE_FILTER_OPS = frozenset({"|=", "!=", "|~", "!~"})
_MATCH_OPS = frozenset({"=", "!=", "=~", "!~"})
_UNSUPPORTED_STAGES = frozenset({"unpack", "decolorize", "distinct"})
_LABEL_NAME = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")


def parse(text: str) -> ast.Expr:
    """Parses a whole LogQL query."""
    parser = _Parser(text)
    expr = parser.expr(0)
    parser.expect_eof()
    return expr


def parse_selector(text: str) -> tuple[ast.Matcher, ...]:
    """Parses a bare stream selector (`match[]` of /series, `query` of label values)."""
    expr = parse(text)
    if not isinstance(expr, ast.LogQuery) or expr.stages:
        raise ParseError("only a stream selector is allowed here")
    return expr.matchers


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens = tokenize(text)
        self.i = 0

    # -- token helpers ---------------------------------------------------------------------

    def peek(self, offset: int = 0) -> Token:
        return self.tokens[min(self.i + offset, len(self.tokens) - 1)]

    def next(self) -> Token:
        token = self.tokens[self.i]
        if token.kind != "EOF":
            self.i += 1
        return token

    def at(self, text: str, offset: int = 0) -> bool:
        token = self.peek(offset)
        return token.kind in ("OP", "IDENT") and token.text == text

    def accept(self, text: str) -> bool:
        if self.at(text):
            self.i += 1
            return True
        return False

    def error(self, token: Token, expected: str = "") -> ParseError:
        found = "end of input" if token.kind == "EOF" else repr(token.text)
        suffix = f", expected {expected}" if expected else ""
        return ParseError(f"syntax error: unexpected {found}{suffix}", token.pos, self.text)

    def expect(self, text: str) -> Token:
        token = self.next()
        if token.text != text or token.kind not in ("OP", "IDENT"):
            raise self.error(token, repr(text))
        return token

    def expect_kind(self, kind: str, what: str) -> Token:
        token = self.next()
        if token.kind != kind:
            raise self.error(token, what)
        return token

    def expect_eof(self) -> None:
        token = self.peek()
        if token.kind != "EOF":
            raise self.error(token)

    def string(self) -> str:
        return cast(str, self.expect_kind("STRING", "a string").value)

    def label_name(self) -> str:
        return cast(str, self.expect_kind("IDENT", "a label name").value)

    def duration_ns(self) -> int:
        token = self.expect_kind("DURATION", "a duration")
        return round(cast(float, token.value) * 1e9)

    # -- expressions ---------------------------------------------------------------------------

    def expr(self, min_precedence: int) -> ast.Expr:
        left: ast.Expr = self.unary()
        while True:
            token = self.peek()
            op = token.text
            if token.kind not in ("OP", "IDENT") or op not in _BINARY_PRECEDENCE:
                return left
            precedence = _BINARY_PRECEDENCE[op]
            if precedence < min_precedence:
                return left
            self.next()
            if op in ("and", "or", "unless"):
                raise Unsupported(f"the binary operator '{op}'")
            return_bool = self.accept("bool")
            if return_bool and op not in _COMPARISONS:
                raise ParseError(
                    "bool modifier can only be used on comparison operators", token.pos, self.text
                )
            for modifier in ("on", "ignoring", "group_left", "group_right"):
                if self.at(modifier):
                    raise Unsupported(f"vector matching with '{modifier}'")
            right = self.expr(precedence if op == "^" else precedence + 1)
            if isinstance(left, ast.LogQuery) or isinstance(right, ast.LogQuery):
                raise ParseError(
                    "unexpected log query in a binary operation (log queries cannot be operands)",
                    token.pos,
                    self.text,
                )
            left = _fold(op, left, right, return_bool)

    def unary(self) -> ast.Expr:
        token = self.peek()
        if token.kind == "OP" and token.text in ("-", "+"):
            self.next()
            operand = self.unary()
            if isinstance(operand, ast.LogQuery):
                raise self.error(token)
            if token.text == "+":
                return operand
            return _fold("*", ast.Scalar(-1.0), operand, False)
        if token.kind == "NUMBER":
            self.next()
            return ast.Scalar(cast(float, token.value))
        if token.kind == "OP" and token.text == "(":
            self.next()
            inner = self.expr(0)
            self.expect(")")
            return inner
        if token.kind == "OP" and token.text == "{":
            return self.log_query()
        if token.kind == "IDENT":
            name = cast(str, token.value)
            if name in ast.VECTOR_FUNCTIONS:
                return self.vector_aggregation()
            if name in ast.RANGE_FUNCTIONS:
                return self.range_aggregation()
            if name in ast.UNSUPPORTED_FUNCTIONS:
                raise Unsupported(f"the function '{name}'")
        raise self.error(token)

    def grouping(self) -> ast.Grouping | None:
        if not (self.at("by") or self.at("without")):
            return None
        without = self.next().text == "without"
        self.expect("(")
        labels: list[str] = []
        while not self.at(")"):
            labels.append(self.label_name())
            if not self.accept(","):
                break
        self.expect(")")
        return ast.Grouping(without, tuple(labels))

    def vector_aggregation(self) -> ast.VectorAggregation:
        name = self.next().text
        grouping = self.grouping()
        self.expect("(")
        param: float | None = None
        if name in ("topk", "bottomk"):
            k = self.expect_kind("NUMBER", "a number (k)")
            param = cast(float, k.value)
            if param != int(param) or param < 1:
                raise ParseError(f"invalid parameter for {name}: {k.text}", k.pos, self.text)
            self.expect(",")
        inner = self.expr(0)
        if isinstance(inner, ast.LogQuery):
            raise ParseError(
                f"{name} needs a metric query (a range aggregation such as count_over_time)",
                self.peek().pos,
                self.text,
            )
        self.expect(")")
        after = self.grouping()
        if after is not None:
            if grouping is not None:
                raise self.error(self.tokens[self.i - 1])
            grouping = after
        return ast.VectorAggregation(name, inner, grouping, param)

    def range_aggregation(self) -> ast.RangeAggregation:
        start = self.next()
        name = start.text
        self.expect("(")
        param: float | None = None
        if name == "quantile_over_time":
            param = cast(float, self.expect_kind("NUMBER", "a quantile").value)
            self.expect(",")
        if self.at("("):
            self.next()
            query, unwrap = self.log_query_with_unwrap()
            self.expect(")")
        else:
            query, unwrap = self.log_query_with_unwrap()
        self.expect("[")
        range_ns = self.duration_ns()
        self.expect("]")
        if self.at("offset"):
            raise Unsupported("'offset'")
        if self.at("|"):
            raise Unsupported("pipeline stages after the range")
        self.expect(")")
        grouping = self.grouping()
        if name in ast.UNWRAP_FUNCTIONS and unwrap is None:
            raise ParseError(f"invalid aggregation {name} without unwrap", start.pos, self.text)
        if name not in ast.UNWRAP_FUNCTIONS and unwrap is not None:
            raise ParseError(f"invalid aggregation {name} with unwrap", start.pos, self.text)
        if (
            grouping is not None
            and name not in ("quantile_over_time",)
            and (name not in ast.UNWRAP_FUNCTIONS)
        ):
            raise ParseError(f"grouping not allowed for {name} aggregation", start.pos, self.text)
        if range_ns <= 0:
            raise ParseError("range must be positive", start.pos, self.text)
        return ast.RangeAggregation(name, query, range_ns, unwrap, param, grouping)

    # -- log queries ---------------------------------------------------------------------------

    def log_query(self) -> ast.LogQuery:
        query, unwrap = self.log_query_with_unwrap()
        if unwrap is not None:
            raise ParseError("unwrap is only allowed inside a range aggregation", None, self.text)
        return query

    def log_query_with_unwrap(self) -> tuple[ast.LogQuery, ast.Unwrap | None]:
        matchers = self.selector()
        stages: list[ast.Stage] = []
        unwrap: ast.Unwrap | None = None
        while True:
            token = self.peek()
            if token.kind != "OP":
                break
            if token.text in _LINE_FILTER_OPS:
                if unwrap is not None:
                    raise self.error(token)
                stages.append(self.line_filter())
                continue
            if token.text != "|":
                break
            self.next()
            if self.at("unwrap"):
                if unwrap is not None:
                    raise self.error(self.peek())
                unwrap = self.unwrap()
                continue
            stage = self.stage()
            if unwrap is not None:
                if not isinstance(stage, ast.LabelFilter):
                    raise self.error(token, "a label filter after unwrap")
                unwrap = ast.Unwrap(unwrap.label, unwrap.conversion, (*unwrap.post_filters, stage))
            else:
                stages.append(stage)
        return ast.LogQuery(matchers, tuple(stages)), unwrap

    def selector(self) -> tuple[ast.Matcher, ...]:
        open_brace = self.expect("{")
        matchers: list[ast.Matcher] = []
        while not self.at("}"):
            name = self.label_name()
            op = self.next()
            if op.kind != "OP" or op.text not in _MATCH_OPS:
                raise self.error(op, "=, !=, =~ or !~")
            value = self.string()
            if op.text in ("=~", "!~"):
                _check_regex(value, op.pos, self.text)
            matchers.append(ast.Matcher(name, cast(ast.MatchOp, op.text), value))
            if not self.accept(","):
                break
        self.expect("}")
        if not any(_not_empty_compatible(m) for m in matchers):
            raise ParseError(
                "queries require at least one regexp or equality matcher that does not have an "
                'empty-compatible value. For instance, app=~".*" does not meet this requirement, '
                'but app=~".+" will',
                None if matchers else open_brace.pos,
                self.text,
            )
        return tuple(matchers)

    def line_filter(self) -> ast.LineFilter:
        op = self.next()
        token = self.peek()
        if token.kind == "IDENT" and token.text == "ip":
            raise Unsupported("the ip() line filter")
        value = self.string()
        if op.text in ("|~", "!~"):
            _check_regex(value, token.pos, self.text)
        if self.at("or"):
            raise Unsupported("'or' between line filter values")
        return ast.LineFilter(cast(ast.LineOp, op.text), value)

    def stage(self) -> ast.Stage:
        token = self.peek()
        name = token.text if token.kind == "IDENT" else ""
        if name in _UNSUPPORTED_STAGES:
            raise Unsupported(f"the '{name}' stage")
        if name == "json" and not self._label_filter_ahead():
            self.next()
            return ast.JsonParser(self.extractions())
        if name == "logfmt" and not self._label_filter_ahead():
            self.next()
            if self.at("-"):
                raise Unsupported("logfmt flags")
            return ast.LogfmtParser(self.extractions())
        if name == "regexp" and self.peek(1).kind == "STRING":
            self.next()
            pattern = self.string()
            _check_regex(pattern, token.pos, self.text)
            if not re.search(r"\(\?P?<[a-zA-Z_]", pattern):
                raise ParseError(
                    "at least one named capture must be supplied", token.pos, self.text
                )
            return ast.RegexpParser(pattern)
        if name == "pattern" and self.peek(1).kind == "STRING":
            self.next()
            return ast.PatternParser(self.string())
        if name == "line_format" and self.peek(1).kind == "STRING":
            self.next()
            return ast.LineFormat(self.string())
        if name == "label_format" and self.peek(1).kind == "IDENT":
            self.next()
            return ast.LabelFormat(self.label_format_assignments())
        if name in ("drop", "keep") and not self._label_filter_ahead():
            self.next()
            names, matchers = self.drop_keep_arguments()
            return ast.Drop(names, matchers) if name == "drop" else ast.Keep(names, matchers)
        if token.kind == "IDENT" or self.at("("):
            return ast.LabelFilter(self.label_filter_or())
        raise self.error(token, "a pipeline stage")

    def _label_filter_ahead(self) -> bool:
        nxt = self.peek(1)
        return nxt.kind == "OP" and nxt.text in ("=", "!=", "=~", "!~", "==", ">", ">=", "<", "<=")

    def extractions(self) -> tuple[tuple[str, str], ...]:
        out: list[tuple[str, str]] = []
        while self.peek().kind == "IDENT" and not self._after_stage_keyword():
            name = self.label_name()
            if self.accept("="):
                out.append((name, self.string()))
            else:
                out.append((name, name))
            if not self.accept(","):
                break
        return tuple(out)

    def _after_stage_keyword(self) -> bool:
        return self.peek().text in ("and", "or")

    def label_format_assignments(self) -> tuple[tuple[str, str, bool], ...]:
        out: list[tuple[str, str, bool]] = []
        while True:
            dest = self.label_name()
            self.expect("=")
            token = self.next()
            if token.kind == "STRING":
                out.append((dest, cast(str, token.value), True))
            elif token.kind == "IDENT":
                out.append((dest, cast(str, token.value), False))
            else:
                raise self.error(token, "a label name or a template string")
            if not self.accept(","):
                return tuple(out)

    def drop_keep_arguments(self) -> tuple[tuple[str, ...], tuple[ast.Matcher, ...]]:
        names: list[str] = []
        matchers: list[ast.Matcher] = []
        while self.peek().kind == "IDENT":
            name = self.label_name()
            op = self.peek()
            if op.kind == "OP" and op.text in _MATCH_OPS:
                self.next()
                value = self.string()
                matchers.append(ast.Matcher(name, cast(ast.MatchOp, op.text), value))
            else:
                names.append(name)
            if not self.accept(","):
                break
        if not names and not matchers:
            raise self.error(self.peek(), "label names")
        return tuple(names), tuple(matchers)

    def unwrap(self) -> ast.Unwrap:
        self.expect("unwrap")
        token = self.expect_kind("IDENT", "a label name")
        if self.at("("):
            conversion = token.text
            if conversion not in ("duration", "duration_seconds", "bytes"):
                raise Unsupported(f"the unwrap conversion '{conversion}'")
            self.next()
            label = self.label_name()
            self.expect(")")
            return ast.Unwrap(label, cast(ast.UnwrapConversion, conversion))
        return ast.Unwrap(cast(str, token.value))

    # -- label filters -------------------------------------------------------------------------

    def label_filter_or(self) -> ast.LabelFilterExpr:
        left = self.label_filter_and()
        while self.at("or"):
            self.next()
            left = ast.OrFilter(left, self.label_filter_and())
        return left

    def label_filter_and(self) -> ast.LabelFilterExpr:
        left = self.label_filter_primary()
        while self.at("and") or (self.at(",") and self.peek(1).kind == "IDENT"):
            self.next()
            left = ast.AndFilter(left, self.label_filter_primary())
        return left

    def label_filter_primary(self) -> ast.LabelFilterExpr:
        if self.accept("("):
            inner = self.label_filter_or()
            self.expect(")")
            return inner
        name_token = self.expect_kind("IDENT", "a label name")
        name = cast(str, name_token.value)
        if self.at("("):
            raise Unsupported(f"the label filter function '{name}()'")
        op = self.next()
        if op.kind != "OP" or op.text not in ("=", "!=", "=~", "!~", "==", ">", ">=", "<", "<="):
            raise self.error(op, "a comparison")
        value = self.next()
        if value.kind == "STRING":
            if op.text not in ("=", "!=", "=~", "!~", "=="):
                raise self.error(value, "a number or duration")
            text = cast(str, value.value)
            if op.text in ("=~", "!~"):
                _check_regex(text, value.pos, self.text)
            string_op = "=" if op.text == "==" else op.text
            return ast.StringLabelFilter(name, cast(ast.MatchOp, string_op), text)
        if op.text in ("=~", "!~"):
            raise self.error(value, "a string")
        number_op = cast(ast.ComparisonOp, "==" if op.text == "=" else op.text)
        if value.kind == "NUMBER":
            return ast.NumberLabelFilter(name, number_op, cast(float, value.value))
        if value.kind == "DURATION":
            return ast.NumberLabelFilter(name, number_op, cast(float, value.value), "duration")
        if value.kind == "BYTES":
            return ast.NumberLabelFilter(name, number_op, cast(float, value.value), "bytes")
        if value.kind == "OP" and value.text == "-" and self.peek().kind == "NUMBER":
            number = -cast(float, self.next().value)
            return ast.NumberLabelFilter(name, number_op, number)
        raise self.error(value, "a string, number, duration or byte size")


def _fold(op: str, left: ast.Expr, right: ast.Expr, return_bool: bool) -> ast.MetricExpr:
    from shopkeeper.logs.query.evaluate import apply_scalar_op

    if isinstance(left, ast.Scalar) and isinstance(right, ast.Scalar):
        folded = apply_scalar_op(op, left.value, right.value, return_bool=True)
        if op in _COMPARISONS and not return_bool:
            raise ParseError("comparisons between scalars must use bool modifier")
        return ast.Scalar(cast(float, folded))
    if not isinstance(left, ast.Scalar) and not isinstance(right, ast.Scalar):
        raise Unsupported("binary operations between two vectors")
    return ast.BinaryOp(op, cast(ast.MetricExpr, left), cast(ast.MetricExpr, right), return_bool)


def _not_empty_compatible(matcher: ast.Matcher) -> bool:
    if matcher.op == "=":
        return matcher.value != ""
    if matcher.op == "=~":
        try:
            return re.fullmatch(python_regex(matcher.value), "") is None
        except re.error:
            return True
    return False


def python_regex(pattern: str) -> str:
    """Go RE2 syntax -> Python's for the constructs that differ in spelling (named groups)."""
    return re.sub(r"\(\?<([a-zA-Z_][a-zA-Z0-9_]*)>", r"(?P<\1>", pattern)


# Perl constructs Python accepts but RE2 (Go's and ClickHouse's engine) refuses.
_NOT_RE2 = re.compile(r"\(\?(?:=|!|<=|<!|>)|\\[1-9]")


def _check_regex(pattern: str, pos: int, text: str) -> None:
    if found := _NOT_RE2.search(pattern):
        raise ParseError(
            f"error parsing regexp: invalid or unsupported Perl syntax: `{found.group()}`",
            pos,
            text,
        )
    try:
        re.compile(python_regex(pattern))
    except re.error as exc:
        raise ParseError(f"invalid regular expression {pattern!r}: {exc}", pos, text) from None


def valid_label_name(name: str) -> bool:
    return bool(_LABEL_NAME.match(name))
