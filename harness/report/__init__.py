"""Reports: pure views of result files, never importing a backend, never re-running a cell;
every page and format the harness draws.

rows.py turns results into tidy rows; table.py renders one table as markdown, HTML or text;
sections.py defines the tables the formats show (details, settings, scaling, shards,
environments, portability); markdown.py, html.py and tabular.py (CSV, JSON) are the formats,
and build.py is ``harness compare``; history.py is ``harness history`` (the gate's series of
stored runs as a table or a page of charts); page.py is the one HTML page shell and its
stylesheet, svg.py the frame and axis of every chart.
"""
