"""Reports: pure views of result files, never importing a backend, never re-running a cell.

rows.py turns results into tidy rows; table.py renders one table as markdown, HTML or text;
sections.py defines the tables the formats show (details, environments, portability);
markdown.py, html.py and tabular.py (CSV, JSON) are the formats; build.py is ``harness compare``.
"""
