"""One serialiser for every emitted CI file: plain data in, Copier template text out.

The emitters build each file as plain dicts and lists (Groovy as `Call` trees). What
depends on a Copier answer appears in two forms only:
- a `Choice` at a whole-entry boundary (a job, a stage, a list item): the entry exists,
  or has another form, only when a Jinja test holds;
- a Jinja expression inside a string value (a placeholder such as `{{ package_name }}`).

Every Jinja expression is swapped for a plain token before the text is written, so YAML
quoting is decided on text that stands for any answer (answers are identifiers, versions
and environment names, never YAML syntax), and restored afterwards. Copier renders
without trim_blocks, so a Choice's tags sit at the start of its first line and right
after its last newline: a false test leaves not even a blank line.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping, Sequence
from typing import Any

import yaml

# yamllint's line-length limit in generated repositories (.yamllint.yaml): a longer
# command is folded at its `&&`s.
MAX_LINE = 100
ABSENT: Any = object()
# Jinja's own expressions; GitHub's `${{ ... }}` is not one.
_JINJA = re.compile(r"(?<!\$)\{\{.*?\}\}|\{%.*?%\}")
_PLAIN_KEY = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_./-]*")


@dataclasses.dataclass(frozen=True)
class Choice:
    """`value` where the Jinja `test` holds, else `otherwise` (ABSENT: nothing at all)."""

    test: str
    value: Any
    otherwise: Any = ABSENT


@dataclasses.dataclass(frozen=True)
class Comment:
    """`# text` lines: a list item of its own, or a key (its value is ignored)."""

    text: str


@dataclasses.dataclass(frozen=True)
class Annotated:
    """A scalar with a comment after it on the same line (`uses: x@sha  # v1.2.3`)."""

    value: Any
    comment: str


@dataclasses.dataclass(frozen=True)
class Spaced:
    """A mapping whose entries are separated by blank lines (jobs, stages)."""

    entries: Mapping[str, Any]


@dataclasses.dataclass(frozen=True)
class Call:
    """A Groovy method call: `name args`, with a `{ ... }` block when `block` is a list."""

    name: str
    args: str = ""
    block: Sequence[Any] | None = None


class _Tokens:
    """Jinja expressions swapped for plain words while the text is written."""

    def __init__(self) -> None:
        self.expressions: list[str] = []

    def word(self, expression: str) -> str:
        self.expressions.append(expression)
        return f"jinjaexpr{len(self.expressions) - 1:04d}x"

    def hide(self, text: str) -> str:
        return _JINJA.sub(lambda match: self.word(match.group(0)), text)

    def restore(self, text: str, raw: bool) -> str:
        """Put the expressions back; `raw` wraps everything else in `{% raw %}` blocks
        (GitHub's own `${{ ... }}` would otherwise read as Jinja)."""

        def expression(match: re.Match[str]) -> str:
            original = self.expressions[int(match.group(1))]
            return f"{{% endraw %}}{original}{{% raw %}}" if raw else original

        restored = re.sub(r"jinjaexpr(\d{4})x", expression, text)
        if raw:
            restored = ("{% raw %}" + restored + "{% endraw %}").replace(
                "{% raw %}{% endraw %}", ""
            )
        return restored


def _choice(tokens: _Tokens, choice: Choice, write: Any) -> str:
    text = tokens.word(f"{{% if {choice.test} %}}") + write(choice.value)
    if choice.otherwise is not ABSENT:
        text += tokens.word("{% else %}") + write(choice.otherwise)
    return text + tokens.word("{% endif %}")


# --- YAML -----------------------------------------------------------------------------


def yaml_text(document: Mapping[str, Any], header: Sequence[str] = (), raw: bool = False) -> str:
    """The YAML file for `document`: top-level entries separated by blank lines, `header`
    as its opening comment."""
    tokens = _Tokens()
    writer = _YamlWriter(tokens)
    text = "".join(f"# {line}\n" if line else "#\n" for line in header)
    text += writer.mapping(document, indent=0, spaced=True)
    return tokens.restore(text, raw)


class _YamlWriter:
    def __init__(self, tokens: _Tokens) -> None:
        self.tokens = tokens

    def mapping(self, entries: Mapping[Any, Any], indent: int, spaced: bool = False) -> str:
        text = ""
        for index, (key, value) in enumerate(entries.items()):
            separator = "\n" if spaced and index > 0 and not isinstance(key, Comment) else ""
            if isinstance(value, Choice):
                text += _choice(
                    self.tokens,
                    value,
                    lambda item, key=key, separator=separator: (
                        separator + self.entry(key, item, indent)
                    ),
                )
            else:
                text += separator + self.entry(key, value, indent)
        return text

    def entry(self, key: Any, value: Any, indent: int) -> str:
        pad = " " * indent
        if isinstance(key, Comment):
            return self.comment(key, indent)
        name = key if _PLAIN_KEY.fullmatch(key) else self.scalar(key, indent)
        if value is None:
            # An empty value: `pull_request:` (the event with its defaults).
            return f"{pad}{name}:\n"
        if isinstance(value, Spaced):
            return f"{pad}{name}:\n" + self.mapping(value.entries, indent + 2, spaced=True)
        if isinstance(value, Mapping) and value:
            return f"{pad}{name}:\n" + self.mapping(value, indent + 2)
        if isinstance(value, list | tuple) and value:
            return f"{pad}{name}:\n" + self.sequence(value, indent + 2)
        return f"{pad}{name}: " + self.scalar(value, indent + 2) + "\n"

    def sequence(self, items: Sequence[Any], indent: int) -> str:
        text = ""
        for item in items:
            if isinstance(item, Choice):
                text += _choice(self.tokens, item, lambda value: self.item(value, indent))
            else:
                text += self.item(item, indent)
        return text

    def item(self, value: Any, indent: int) -> str:
        pad = " " * indent
        if isinstance(value, Comment):
            return self.comment(value, indent)
        if isinstance(value, Mapping) and value:
            # The first entry shares the dash's line; the others line up under it.
            nested = self.mapping(value, indent + 2)
            return f"{pad}- " + nested[indent + 2 :]
        if isinstance(value, list | tuple) and value:
            return f"{pad}-\n" + self.sequence(value, indent + 2)
        return f"{pad}- " + self.scalar(value, indent + 2) + "\n"

    def comment(self, comment: Comment, indent: int) -> str:
        return "".join(f"{' ' * indent}# {line}\n" for line in comment.text.splitlines())

    def scalar(self, value: Any, indent: int) -> str:
        if isinstance(value, Annotated):
            return f"{self.scalar(value.value, indent)}  # {value.comment}"
        if isinstance(value, Mapping | list | tuple):
            return "{}" if isinstance(value, Mapping) else "[]"
        if value is None:
            return "null"
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, int | float):
            return str(value)
        text = self.tokens.hide(str(value))
        pad = " " * indent
        if "\n" in text:
            indicator = "|" if text.endswith("\n") else "|-"
            lines = text.rstrip("\n").split("\n")
            return indicator + "".join(f"\n{pad}{line}" if line else "\n" for line in lines)
        if indent + len(text) > MAX_LINE and " && " in text:
            parts = text.split(" && ")
            folded = [f"{part} &&" for part in parts[:-1]] + [parts[-1]]
            return ">-" + "".join(f"\n{pad}{part}" for part in folded)
        dumped = yaml.safe_dump(text, width=10**6, allow_unicode=True)
        return dumped.removesuffix("\n").removesuffix("\n...")


# --- Groovy ---------------------------------------------------------------------------


def groovy_text(calls: Sequence[Any], header: Sequence[str] = ()) -> str:
    """A Jenkinsfile for the top-level `calls`, `header` as its opening comment."""
    tokens = _Tokens()
    text = "".join(f"// {line}\n" for line in header)
    text += _groovy_block(tokens, calls, indent=0)
    return tokens.restore(text, raw=False)


def _groovy_block(tokens: _Tokens, items: Sequence[Any], indent: int) -> str:
    text = ""
    for item in items:
        if isinstance(item, Choice):
            text += _choice(tokens, item, lambda value: _groovy_item(tokens, value, indent))
        else:
            text += _groovy_item(tokens, item, indent)
    return text


def _groovy_item(tokens: _Tokens, item: Any, indent: int) -> str:
    pad = " " * indent
    if isinstance(item, Comment):
        return "".join(f"{pad}// {line}\n" for line in item.text.splitlines())
    if isinstance(item, list | tuple):
        return _groovy_block(tokens, item, indent)
    if not isinstance(item, Call):
        raise TypeError(f"not a Groovy call: {item!r}")
    # `stage('x')` and `timestamps()` take their arguments in parentheses, `sh 'x'` after a
    # space.
    separator = "" if item.args.startswith("(") else " "
    head = tokens.hide(f"{item.name}{separator}{item.args}".rstrip())
    if item.block is None:
        return f"{pad}{head}\n"
    return f"{pad}{head} {{\n" + _groovy_block(tokens, item.block, indent + 4) + f"{pad}}}\n"
