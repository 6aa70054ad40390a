"""The part of Go's text/template that `line_format` and `label_format` templates use:
`{{ .label }}`, `{{ __line__ }}`, string literals, pipelines and a set of Loki's functions.
Anything else (`if`, `range`, other functions) is refused as unsupported."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from shopkeeper.logs.query.errors import ParseError, Unsupported

_ACTION = re.compile(r"\{\{(-\s)?(.*?)(\s-)?\}\}", re.DOTALL)
_ARG = re.compile(r'\s*(?:"((?:[^"\\]|\\.)*)"|`([^`]*)`|(\.[A-Za-z_][A-Za-z0-9_]*)|(\|)|([^\s|]+))')


def _printf(fmt: str, *args: str) -> str:
    out = re.sub(r"%[vqd]", "%s", fmt)
    return out % args if args else out


def _trunc(n: str, value: str) -> str:
    count = int(float(n))
    return value[:count] if count >= 0 else value[count:]


_FUNCTIONS: dict[str, Callable[..., str]] = {
    "ToUpper": str.upper,
    "ToLower": str.lower,
    "upper": str.upper,
    "lower": str.lower,
    "title": str.title,
    "Title": str.title,
    "TrimSpace": str.strip,
    "trim": str.strip,
    "trimPrefix": lambda prefix, value: value.removeprefix(prefix),
    "trimSuffix": lambda suffix, value: value.removesuffix(suffix),
    "replace": lambda old, new, value: value.replace(old, new),
    "Replace": lambda value, old, new, n: value.replace(old, new, int(n)),
    "default": lambda fallback, value="": value or fallback,
    "printf": _printf,
    "trunc": _trunc,
    "len": lambda value: str(len(value)),
    "contains": lambda needle, value: "true" if needle in value else "false",
}


@dataclass(frozen=True, slots=True)
class _Arg:
    kind: str  # "field" | "line" | "literal" | "func"
    text: str


Pipeline = tuple[tuple[_Arg, ...], ...]


@dataclass(frozen=True, slots=True)
class Template:
    parts: tuple[str | Pipeline, ...]

    def render(self, labels: Mapping[str, str], line: str) -> str:
        out: list[str] = []
        for part in self.parts:
            out.append(part if isinstance(part, str) else _run(part, labels, line))
        return "".join(out)


def compile_template(source: str) -> Template:
    parts: list[str | Pipeline] = []
    position = 0
    for match in _ACTION.finditer(source):
        text = source[position : match.start()]
        if match.group(1):
            text = text.rstrip()
        parts.append(text)
        parts.append(_parse_action(match.group(2).strip(), source))
        position = match.end()
        if match.group(3):
            rest = source[position:]
            position += len(rest) - len(rest.lstrip())
    tail = source[position:]
    if "{{" in tail:
        raise ParseError(f"template: unclosed action in {source!r}")
    parts.append(tail)
    return Template(tuple(p for p in parts if p != ""))


def _parse_action(action: str, source: str) -> Pipeline:
    commands: list[tuple[_Arg, ...]] = []
    current: list[_Arg] = []
    position = 0
    while position < len(action):
        match = _ARG.match(action, position)
        if not match or match.end() == position:
            raise ParseError(f"template: cannot parse {action!r} in {source!r}")
        position = match.end()
        double, raw, field, pipe, word = match.groups()
        if pipe:
            commands.append(tuple(current))
            current = []
        elif double is not None:
            current.append(_Arg("literal", bytes(double, "utf-8").decode("unicode_escape")))
        elif raw is not None:
            current.append(_Arg("literal", raw))
        elif field:
            current.append(_Arg("field", field[1:]))
        elif word == "__line__":
            current.append(_Arg("line", word))
        elif word and re.fullmatch(r"-?\d+(\.\d+)?", word):
            current.append(_Arg("literal", word))
        elif word in _FUNCTIONS:
            current.append(_Arg("func", word))
        elif word:
            raise Unsupported(f"the template action or function '{word}'")
    commands.append(tuple(current))
    if any(not command for command in commands):
        raise ParseError(f"template: empty command in {source!r}")
    for command in commands:
        if any(arg.kind == "func" for arg in command[1:]):
            raise Unsupported("nested template function calls")
    return tuple(commands)


def _run(pipeline: Pipeline, labels: Mapping[str, str], line: str) -> str:
    value: str | None = None
    for command in pipeline:
        head, *rest = command
        args = [_value(arg, labels, line) for arg in rest]
        if value is not None:
            args.append(value)
        if head.kind == "func":
            try:
                value = _FUNCTIONS[head.text](*args)
            except (TypeError, ValueError) as exc:
                raise ParseError(f"template: {head.text}: {exc}") from None
        elif args and value is None:
            raise ParseError("template: only functions take arguments")
        else:
            value = _value(head, labels, line)
    return value or ""


def _value(arg: _Arg, labels: Mapping[str, str], line: str) -> str:
    if arg.kind == "field":
        return labels.get(arg.text, "")
    if arg.kind == "line":
        return line
    return arg.text
