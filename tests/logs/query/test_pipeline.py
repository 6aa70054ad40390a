"""The Python side of the pipeline on single entries: Loki's parser, filter and template rules."""

from __future__ import annotations

import pytest

from shopkeeper.logs.query import ast
from shopkeeper.logs.query.errors import ParseError, Unsupported
from shopkeeper.logs.query.parser import parse
from shopkeeper.logs.query.pipeline import (
    Entry,
    compile_pipeline,
    contains_word,
    go_duration_seconds,
    humanized_bytes,
    pattern_regex,
)
from shopkeeper.logs.query.template import compile_template


def run(stages: str, line: str, stream: dict[str, str] | None = None) -> Entry | None:
    expr = parse('{service="s"} ' + stages)
    assert isinstance(expr, ast.LogQuery)
    entry = Entry(1, line, stream or {"service": "s"}, {})
    return entry if compile_pipeline(expr.stages).run(entry) else None


def test_json_flattens_objects_skips_arrays_and_renames_clashes() -> None:
    entry = run("| json", '{"a": {"b": 1, "c-d": "x"}, "list": [1], "service": "other", "n": null}')
    assert entry is not None
    assert entry.parsed == {"a_b": "1", "a_c_d": "x", "service_extracted": "other"}


def test_json_with_paths_and_bad_json() -> None:
    entry = run('| json first="a.b", second="list[1]"', '{"a": {"b": "x"}, "list": [1, 2]}')
    assert entry is not None and entry.parsed == {"first": "x", "second": "2"}
    broken = run("| json", "not json")
    assert broken is not None and broken.parsed["__error__"] == "JSONParserErr"
    assert run('| json | __error__=""', "not json") is None


def test_logfmt_quotes_and_standalone_keys() -> None:
    entry = run("| logfmt", 'level=info msg="a \\"quoted\\" word" bare dur=1.5s')
    assert entry is not None
    assert entry.parsed == {"level": "info", "msg": 'a "quoted" word', "dur": "1.5s"}


def test_numeric_filters_follow_loki_on_missing_and_unconvertible_values() -> None:
    assert run("| logfmt | status >= 500", "status=503") is not None
    assert run("| logfmt | status >= 500", "status=200") is None
    assert run("| logfmt | status >= 500", "other=1") is None  # missing: dropped
    kept = run("| logfmt | status >= 500", "status=oops")  # unconvertible: kept, marked
    assert kept is not None and kept.parsed["__error__"] == "LabelFilterErr"
    assert run("| logfmt | took > 1s", "took=1500ms") is not None
    assert run("| logfmt | took > 1s", "took=999ms") is None
    assert run("| logfmt | size > 1KB", "size=2KiB") is not None


def test_regexp_pattern_line_and_label_format() -> None:
    entry = run(
        '| pattern "<ip> - <_> [<ts>] \\"<method> <path> <_>\\" <status>" '
        '| line_format "{{.method}} {{.path | ToUpper}} {{ default \\"-\\" .missing }}" '
        "| label_format code=status | drop ts",
        '1.2.3.4 - - [now] "GET /a HTTP/1.1" 404',
    )
    assert entry is not None
    assert entry.line == "GET /A -"
    assert entry.parsed == {"ip": "1.2.3.4", "method": "GET", "path": "/a", "code": "404"}


def test_keep_applies_to_stream_labels_too() -> None:
    entry = run("| keep host", "x", {"service": "s", "host": "h"})
    assert entry is not None and entry.stream == {"host": "h"}


def test_word_matching_is_token_bounded() -> None:
    assert contains_word("a timeout=5", "timeout")
    assert not contains_word("timeouts", "timeout")
    assert contains_word("my_timeout", "timeout")  # `_` separates, as in hasToken
    assert not contains_word("réseautimeout", "timeout")


def test_units() -> None:
    assert go_duration_seconds("1h2m3.5s") == 3723.5
    assert go_duration_seconds("-5ms") == -0.005
    assert go_duration_seconds("10") is None
    assert humanized_bytes("1.5MB") == 1_500_000
    assert humanized_bytes("42") == 42
    assert pattern_regex("<a> <_> end").match("x y end") is not None


@pytest.mark.parametrize(
    ("template", "error"),
    [("{{ if .a }}x{{ end }}", Unsupported), ("{{ .a", ParseError)],
)
def test_templates_refuse_what_they_do_not_run(template: str, error: type) -> None:
    with pytest.raises(error):
        compile_template(template)


def test_a_template_failing_on_a_line_marks_it_as_loki_does() -> None:
    entry = run('| line_format "{{ ToUpper }}"', "line")
    assert entry is not None
    assert entry.line == "line"
    assert entry.parsed["__error__"] == "TemplateFormatErr"
