"""Escaping for every output format the leaderboard writes: any name (a scenario, a plugin, a
suite) is shown as the text it is, never interpreted as markup.

- :func:`markdown`: GitHub-flavoured Markdown, inside table cells or headings.
- :func:`latex`: LaTeX text mode (booktabs tables, captions), with the arrows and dashes the tables use.
- :func:`html_text`: HTML text and attribute values.
- :func:`markdown_target`: a file name as a Markdown link target (``](<name>)``).
- :func:`latex_file`: a file name as ``\\includegraphics`` reads it, or None where LaTeX cannot read it.
- :func:`slug`: a name as a file-name, anchor and label piece (letters, digits, ``-_.``).

Each one turns a line break into a space, so a cell or a heading stays on its line.
"""

from __future__ import annotations

import html

from hansbench.bench.names import slug  # noqa: F401  (escape.slug: the report's name for the one rule)

__all__ = ["markdown", "latex", "html_text", "markdown_target", "latex_file", "slug"]

# Characters that start markup in (GitHub-flavoured) Markdown, as backslash escapes; ``<``, ``>`` and ``&``
# as entities, so raw HTML and entity references render as text (a backslash does not stop ``&amp;``).
_MD = {ch: "\\" + ch for ch in "\\`*_[]|~$#"}  # ``$``: GitHub math; ``#``: issue links
_MD.update({"<": "&lt;", ">": "&gt;", "&": "&amp;"})

_TEX = {
    "\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_", "{": r"\{", "}": r"\}",
    "~": r"\textasciitilde{}", "^": r"\textasciicircum{}", "<": r"\textless{}", ">": r"\textgreater{}",
    "|": r"\textbar{}", "↑": r"$\uparrow$", "↓": r"$\downarrow$", "–": "--", "×": r"$\times$",
    "±": r"$\pm$", "−": "$-$", "†": r"\textdagger{}", "‡": r"\textdaggerdbl{}", "≥": r"$\geq$", "≤": r"$\leq$",
    "·": r"$\cdot$", "§": r"\S{}", "¶": r"\P{}", "♯": r"$\sharp$", "◊": r"$\diamond$", "τ": r"$\tau$",
    "α": r"$\alpha$", "χ": r"$\chi$", "²": r"\textsuperscript{2}", "…": r"\ldots{}", "°": r"\textdegree{}",
    "ε": r"$\varepsilon$", "μ": r"$\mu$", "š": r"\v{s}", "≈": r"$\approx$", "≠": r"$\neq$", "→": r"$\rightarrow$",
}


def _one_line(text: object) -> str:
    return " ".join(str(text).splitlines())


def markdown(text: object) -> str:
    """``text`` as literal Markdown text (safe in a table cell and in a heading)."""
    return "".join(_MD.get(ch, ch) for ch in _one_line(text))


def latex(text: object) -> str:
    """``text`` as literal LaTeX text-mode material (no command, group or math is opened)."""
    return "".join(_TEX.get(ch, ch) for ch in _one_line(text))


def html_text(text: object) -> str:
    """``text`` as literal HTML, safe in element content and in quoted attribute values."""
    return html.escape(_one_line(text), quote=True)


def markdown_target(name: object) -> str:
    """A file name as the target of ``![...](<name>)``: the angle brackets that would end it percent-encoded."""
    return _one_line(name).replace("<", "%3C").replace(">", "%3E")


# Characters TeX reads as markup even inside ``\\includegraphics{...}`` (a comment, a parameter, a group, math, a
# space that is not a space); no escape makes pdflatex find such a file, so it is named instead of included.
_TEX_FILE_UNSAFE = set("%#&{}\\$^~")


def latex_file(name: object) -> str | None:
    """``name`` as ``\\includegraphics`` reads it, or None where it holds a character TeX would read as markup
    (or one outside ASCII)."""
    text = str(name)
    if not text or not text.isascii() or set(text) & _TEX_FILE_UNSAFE or not text.isprintable():
        return None
    return text
