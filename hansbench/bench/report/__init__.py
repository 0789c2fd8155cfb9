"""The report: rows -> typed results -> one page document -> Markdown, LaTeX and HTML; figures."""
