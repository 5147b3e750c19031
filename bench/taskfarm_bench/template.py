"""The report's templates: bench/report/NAME.md, each made of parts that
start with a line `<!-- part: PART -->` (what comes before the first is a
comment for the reader). A part is a string.Template: ${name} is a figure.

Paragraphs may be wrapped in a template: a line that goes on the paragraph
above it is joined to it with one space (the report keeps one paragraph per
line). A line does not go on when it or the line above is blank, a table row
(`|`), a heading (`#`), an image (`![`) or a code fence, or when it starts a
list item (`- `); inside a code block nothing is joined."""

import functools
import re
from string import Template

from .paths import TEMPLATES

PART = re.compile(r"^<!-- part: (\w+) -->\n", re.M)
BLOCK_STARTS = ("|", "#", "![", "```")


def unwrap(text):
    """The template text with wrapped paragraphs joined (see above)."""
    out = []
    fence = False
    for line in text.split("\n"):
        starts_block = line.startswith(BLOCK_STARTS) or line.startswith("- ")
        if line.startswith("```"):
            fence = not fence
        elif (not fence and not starts_block and line and out and out[-1]
              and not out[-1].startswith(BLOCK_STARTS)):
            out[-1] += " " + line.lstrip()
            continue
        out.append(line)
    return "\n".join(out)


@functools.cache
def parts(name):
    """{part: Template} of bench/report/NAME.md."""
    pieces = PART.split((TEMPLATES / f"{name}.md").read_text())
    return {pieces[i]: Template(unwrap(pieces[i + 1].strip("\n"))) for i in range(1, len(pieces), 2)}


def fill(template, part, /, **figures):
    """Part `part` of bench/report/TEMPLATE.md with the figures filled in (every
    ${name} must have one: a missing figure is a KeyError)."""
    return parts(template)[part].substitute(figures)


def text(template, part):
    """A part without figures."""
    return fill(template, part)
