"""The LogQL pipeline in Python, for the stages SQL does not run: parsers, formatters, label
filters on parsed labels, line filters after `line_format`. It runs only on rows SQL has
already narrowed by time, selector and pushed filters."""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson

from shopkeeper.logs.query import ast
from shopkeeper.logs.query.compiler import STREAM_COLUMNS, is_single_token
from shopkeeper.logs.query.errors import ParseError
from shopkeeper.logs.query.lexer import parse_bytes, parse_duration_seconds
from shopkeeper.logs.query.parser import python_regex
from shopkeeper.logs.query.template import Template, compile_template

_INVALID_LABEL_CHARS = re.compile(r"[^a-zA-Z0-9_]")
_TOKEN_CHARS = re.compile(r"[0-9A-Za-z\x80-\U0010ffff]")
_LOGFMT = re.compile(r'([^\s="]+)(?:=("(?:[^"\\]|\\.)*"|[^\s"]*))?')
_GO_DURATION = re.compile(
    r"[-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:ns|us|µs|ms|s|m|h)(?:(?:\d+(?:\.\d*)?|\.\d+)(?:ns|us|µs|ms|s|m|h))*"
)
ERROR = "__error__"
ERROR_DETAILS = "__error_details__"


def sanitize(name: str) -> str:
    """Loki's label-name rule: characters outside [a-zA-Z0-9_] become `_`."""
    name = _INVALID_LABEL_CHARS.sub("_", name)
    return "_" + name if name[:1].isdigit() else name


@dataclass(slots=True)
class Entry:
    """One line and its labels, by Loki's categories."""

    ts: int
    line: str
    stream: dict[str, str]
    metadata: dict[str, str]
    parsed: dict[str, str] = field(default_factory=dict)

    def get(self, name: str) -> str | None:
        for labels in (self.parsed, self.metadata, self.stream):
            if name in labels:
                return labels[name]
        return None

    def all_labels(self) -> dict[str, str]:
        return {**self.stream, **self.metadata, **self.parsed}

    def set(self, name: str, value: str) -> None:
        for labels in (self.stream, self.metadata, self.parsed):
            if name in labels:
                labels[name] = value
                return
        self.parsed[name] = value

    def delete(self, name: str) -> None:
        for labels in (self.stream, self.metadata, self.parsed):
            labels.pop(name, None)

    def add_parsed(self, name: str, value: str) -> None:
        """A parsed label never replaces a stream label or metadata: it gets `_extracted`."""
        if name in self.stream or name in self.metadata:
            name += "_extracted"
        self.parsed[name] = value

    def set_error(self, kind: str, details: str) -> None:
        if ERROR not in self.parsed:
            self.parsed[ERROR] = kind
            self.parsed[ERROR_DETAILS] = details

    def series_labels(self) -> dict[str, str]:
        """Labels of a metric query's series: stream and parsed labels (not metadata)."""
        return {k: v for k, v in {**self.stream, **self.parsed}.items() if v != ""}


def entry_from_row(row: Mapping[str, Any]) -> Entry:
    stream = {name: row[name] for name in STREAM_COLUMNS if row[name]}
    metadata: dict[str, str] = {}
    if row["trace_id"]:
        metadata["trace_id"] = row["trace_id"]
    if row["span_id"]:
        metadata["span_id"] = row["span_id"]
    label_keys = set(row["label_keys"])
    for key, value in row["attributes"].items():
        if value == "":
            continue
        (stream if key in label_keys else metadata)[sanitize(key)] = value
    return Entry(int(row["ts"]), row["message"], stream, metadata)


# -- line filters ------------------------------------------------------------------------------


def contains_word(line: str, needle: str) -> bool:
    """`|=` with a one-word needle: the word occurs as a whole token (as `hasToken`)."""
    start = line.find(needle)
    while start >= 0:
        end = start + len(needle)
        before = line[start - 1] if start else ""
        after = line[end] if end < len(line) else ""
        if not (before and _TOKEN_CHARS.match(before)) and not (
            after and _TOKEN_CHARS.match(after)
        ):
            return True
        start = line.find(needle, start + 1)
    return False


def line_matches(line_filter: ast.LineFilter, line: str) -> bool:
    value = line_filter.value
    if line_filter.op in ("|=", "!="):
        if value == "":
            found = True
        elif is_single_token(value):
            found = contains_word(line, value)
        else:
            found = value in line
        return found if line_filter.op == "|=" else not found
    found = re.search(python_regex(value), line) is not None
    return found if line_filter.op == "|~" else not found


# -- label filters -----------------------------------------------------------------------------


def go_duration_seconds(text: str) -> float | None:
    if text in ("0", "+0", "-0"):
        return 0.0
    if not _GO_DURATION.fullmatch(text):
        return None
    sign = -1.0 if text.startswith("-") else 1.0
    seconds = parse_duration_seconds(text.lstrip("+-"))
    return None if seconds is None else sign * seconds


def humanized_bytes(text: str) -> float | None:
    text = text.strip()
    try:
        return float(text)
    except ValueError:
        pass
    return parse_bytes(text.replace(" ", ""))


_COMPARE: dict[str, Callable[[float, float], bool]] = {
    "==": lambda a, b: a == b,
    "!=": lambda a, b: a != b,
    ">": lambda a, b: a > b,
    ">=": lambda a, b: a >= b,
    "<": lambda a, b: a < b,
    "<=": lambda a, b: a <= b,
}


def _string_match(op: str, value: str, expected: str) -> bool:
    if op == "=":
        return value == expected
    if op == "!=":
        return value != expected
    found = re.fullmatch(python_regex(expected), value, re.DOTALL) is not None
    return found if op == "=~" else not found


def label_filter_matches(expr: ast.LabelFilterExpr, entry: Entry) -> bool:
    if isinstance(expr, ast.AndFilter):
        return label_filter_matches(expr.left, entry) and label_filter_matches(expr.right, entry)
    if isinstance(expr, ast.OrFilter):
        return label_filter_matches(expr.left, entry) or label_filter_matches(expr.right, entry)
    if isinstance(expr, ast.StringLabelFilter):
        return _string_match(expr.op, entry.get(expr.name) or "", expr.value)
    # Loki's numeric filters: an earlier error lets the line through, a missing label drops it,
    # a value that does not convert keeps the line marked with __error__.
    if ERROR in entry.parsed:
        return True
    raw = entry.get(expr.name)
    if raw is None or raw == "":
        return False
    number: float | None
    if expr.kind == "duration":
        number = go_duration_seconds(raw)
    elif expr.kind == "bytes":
        number = humanized_bytes(raw)
    else:
        try:
            number = float(raw)
        except ValueError:
            number = None
    if number is None:
        entry.set_error("LabelFilterErr", f"cannot convert {raw!r} for {expr.name}")
        return True
    return _COMPARE[expr.op](number, expr.value)


# -- parsers -----------------------------------------------------------------------------------


def _json_text(value: Any) -> str | None:
    if isinstance(value, str):
        return value
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value) if isinstance(value, float) else str(value)
    return orjson.dumps(value).decode()


def _flatten(prefix: str, value: Any, out: list[tuple[str, str]]) -> None:
    if isinstance(value, dict):
        for key, inner in value.items():
            _flatten(f"{prefix}_{key}" if prefix else str(key), inner, out)
    elif isinstance(value, list):
        return  # Loki's `| json` skips arrays
    else:
        text = _json_text(value)
        if text is not None:
            out.append((sanitize(prefix), text))


_PATH_PART = re.compile(r'\.?([A-Za-z0-9_\-@$]+)|\[(\d+)\]|\["([^"]*)"\]')


def json_path(document: Any, path: str) -> Any:
    position = 0
    current = document
    while position < len(path):
        match = _PATH_PART.match(path, position)
        if not match:
            return None
        position = match.end()
        key, index, quoted = match.groups()
        if index is not None:
            if not isinstance(current, list) or int(index) >= len(current):
                return None
            current = current[int(index)]
        else:
            if not isinstance(current, dict):
                return None
            current = current.get(key if key is not None else quoted)
    return current


def run_json(stage: ast.JsonParser, entry: Entry) -> bool:
    try:
        document = orjson.loads(entry.line)
    except orjson.JSONDecodeError as exc:
        entry.set_error("JSONParserErr", str(exc))
        return True
    if stage.extractions:
        for name, path in stage.extractions:
            text = _json_text(json_path(document, path))
            if text is not None:
                entry.add_parsed(name, text)
        return True
    if not isinstance(document, dict):
        entry.set_error("JSONParserErr", "the line is not a JSON object")
        return True
    pairs: list[tuple[str, str]] = []
    _flatten("", document, pairs)
    for name, text in pairs:
        entry.add_parsed(name, text)
    return True


def _logfmt_value(raw: str | None) -> str:
    if raw is None:
        return ""
    if raw.startswith('"'):
        try:
            return str(orjson.loads(raw))
        except orjson.JSONDecodeError:
            return raw[1:-1]
    return raw


def run_logfmt(stage: ast.LogfmtParser, entry: Entry) -> bool:
    # Standalone keys (no `=value`) are skipped, as Loki's parser does without --keep-empty.
    pairs = {sanitize(k): _logfmt_value(v) for k, v in _LOGFMT.findall(entry.line) if v}
    if stage.extractions:
        for name, key in stage.extractions:
            if key in pairs:
                entry.add_parsed(name, pairs[key])
        return True
    for name, value in pairs.items():
        entry.add_parsed(name, value)
    return True


def pattern_regex(pattern: str) -> re.Pattern[str]:
    """Loki's `pattern` syntax (`<name>` captures, `<_>` skips, the rest literal) as a regex."""
    parts = re.split(r"(<[A-Za-z_][A-Za-z0-9_]*>)", pattern)
    regex = ["^"]
    seen: set[str] = set()
    captures = [p for p in parts if p.startswith("<") and p.endswith(">")]
    for index, part in enumerate(parts):
        if part in captures:
            name = part[1:-1]
            last = index == len(parts) - 1 or all(p == "" for p in parts[index + 1 :])
            body = ".*" if last else ".*?"
            if name == "_" or name in seen:
                regex.append(f"(?:{body})")
            else:
                seen.add(name)
                regex.append(f"(?P<{name}>{body})")
        else:
            regex.append(re.escape(part))
    return re.compile("".join(regex), re.DOTALL)


# -- the whole pipeline ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Pipeline:
    """Compiled stages; `run` returns False when the entry is dropped."""

    steps: tuple[Callable[[Entry], bool], ...]

    def run(self, entry: Entry) -> bool:
        return all(step(entry) for step in self.steps)


def _keep_step(stage: ast.Keep) -> Callable[[Entry], bool]:
    def keep(entry: Entry) -> bool:
        for labels in (entry.stream, entry.metadata, entry.parsed):
            for name in list(labels):
                if name in stage.names:
                    continue
                if any(
                    m.name == name and _string_match(m.op, labels[name], m.value)
                    for m in stage.matchers
                ):
                    continue
                del labels[name]
        return True

    return keep


def _drop_step(stage: ast.Drop) -> Callable[[Entry], bool]:
    def drop(entry: Entry) -> bool:
        for name in stage.names:
            entry.delete(name)
        for matcher in stage.matchers:
            value = entry.get(matcher.name)
            if value is not None and _string_match(matcher.op, value, matcher.value):
                entry.delete(matcher.name)
        return True

    return drop


def _label_format_step(stage: ast.LabelFormat) -> Callable[[Entry], bool]:
    templates: list[tuple[str, str, Template | None]] = [
        (dest, source, compile_template(source) if is_template else None)
        for dest, source, is_template in stage.assignments
    ]

    def label_format(entry: Entry) -> bool:
        labels = entry.all_labels()
        for dest, source, template in templates:
            if template is not None:
                try:
                    entry.set(dest, template.render(labels, entry.line))
                except ParseError as exc:
                    entry.set_error("TemplateFormatErr", str(exc))
            else:
                value = labels.get(source, "")
                entry.delete(source)
                entry.set(dest, value)
        return True

    return label_format


def _line_format_step(stage: ast.LineFormat) -> Callable[[Entry], bool]:
    template = compile_template(stage.template)

    def line_format(entry: Entry) -> bool:
        try:
            entry.line = template.render(entry.all_labels(), entry.line)
        except ParseError as exc:
            entry.set_error("TemplateFormatErr", str(exc))
        return True

    return line_format


def compile_pipeline(stages: Sequence[ast.Stage]) -> Pipeline:
    steps: list[Callable[[Entry], bool]] = []
    for stage in stages:
        steps.append(_step(stage))
    return Pipeline(tuple(steps))


def _step(stage: ast.Stage) -> Callable[[Entry], bool]:
    if isinstance(stage, ast.LineFilter):
        return lambda entry: line_matches(stage, entry.line)
    if isinstance(stage, ast.LabelFilter):
        return lambda entry: label_filter_matches(stage.expr, entry)
    if isinstance(stage, ast.JsonParser):
        return lambda entry: run_json(stage, entry)
    if isinstance(stage, ast.LogfmtParser):
        return lambda entry: run_logfmt(stage, entry)
    if isinstance(stage, ast.RegexpParser):
        regex = re.compile(python_regex(stage.pattern))
        return lambda entry: _run_regex(regex, entry, search=True)
    if isinstance(stage, ast.PatternParser):
        regex = pattern_regex(stage.pattern)
        return lambda entry: _run_regex(regex, entry, search=False)
    if isinstance(stage, ast.LineFormat):
        return _line_format_step(stage)
    if isinstance(stage, ast.LabelFormat):
        return _label_format_step(stage)
    if isinstance(stage, ast.Drop):
        return _drop_step(stage)
    return _keep_step(stage)


def _run_regex(regex: re.Pattern[str], entry: Entry, *, search: bool) -> bool:
    match = regex.search(entry.line) if search else regex.match(entry.line)
    if match:
        for name, value in match.groupdict().items():
            if value is not None and name != "_":
                entry.add_parsed(sanitize(name), value)
    return True


def unwrap_value(unwrap: ast.Unwrap, entry: Entry) -> float | None:
    """The sample of an unwrapped label; None marks the entry with a SampleExtractionErr."""
    raw = entry.get(unwrap.label)
    if raw is None:
        raw = ""
    value: float | None
    if unwrap.conversion in ("duration", "duration_seconds"):
        value = go_duration_seconds(raw)
    elif unwrap.conversion == "bytes":
        value = humanized_bytes(raw)
    else:
        try:
            value = float(raw.strip())
        except ValueError:
            value = None
    if value is None or (math.isnan(value) and raw.strip().lower() != "nan"):
        entry.set_error("SampleExtractionErr", f"cannot convert {raw!r} to a number")
        return None
    return value


def run_all(pipeline: Pipeline, entries: Iterable[Entry]) -> list[Entry]:
    return [entry for entry in entries if pipeline.run(entry)]
