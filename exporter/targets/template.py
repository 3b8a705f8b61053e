"""Group-name templates in process-exporter's Go-template subset.

``{{.Comm}}``, ``{{.ExeBase}}``, ``{{.ExeFull}}``, ``{{.Username}}`` and
``{{.Matches.<name>}}`` (a named capture of the entry's cmdline regexes).
Anything else is rejected at load time, not at scrape time.
"""

import re

_FIELD = re.compile(r"\{\{\s*\.(\w+)(?:\.(\w+))?\s*\}\}")
_SIMPLE = {"Comm", "ExeBase", "ExeFull", "Username"}


class TemplateError(ValueError):
    pass


class Template:
    def __init__(self, text: str, captures: set[str]):
        self.text = text
        self.parts: list[tuple[str, str | None]] = []  # (literal, None) or (field, capture)
        pos = 0
        for m in _FIELD.finditer(text):
            self.parts.append((text[pos : m.start()], None))
            field, sub = m.group(1), m.group(2)
            if field == "Matches":
                if sub is None or sub not in captures:
                    known = ", ".join(sorted(captures)) or "none"
                    raise TemplateError(f"{m.group(0)}: no such named capture in cmdline (have: {known})")
            elif field not in _SIMPLE or sub is not None:
                raise TemplateError(f"{m.group(0)}: unknown field (use Comm, ExeBase, ExeFull, Username, Matches.X)")
            self.parts.append((field, sub or ""))
            pos = m.end()
        rest = text[pos:]
        if "{{" in rest or "}}" in rest:
            raise TemplateError(f"unbalanced or unsupported template syntax in {text!r}")
        self.parts.append((rest, None))
        self.fields = {f for f, sub in self.parts if sub is not None}
        self.needs_argv = bool(self.fields & {"ExeBase", "ExeFull"})

    def render(self, values: dict[str, str], matches: dict[str, str]) -> str:
        out = []
        for part, sub in self.parts:
            if sub is None:
                out.append(part)
            elif part == "Matches":
                out.append(matches.get(sub) or "")
            else:
                out.append(values.get(part, ""))
        return "".join(out)

    def __eq__(self, other):
        return isinstance(other, Template) and other.text == self.text

    def __hash__(self):
        return hash(self.text)

    def __repr__(self):
        return f"Template({self.text!r})"
