"""What every benchmark shares: a short table on stdout and the full rows as JSON at the end, and one line
and exit status 2 on bad input, as main.py."""

import json
import pathlib
import sys


def report(rows, columns, output, **summary):
  """Prints `columns` of `rows` as a table ("-" where a row has none) and writes {**summary, "rows": rows} to
  `output`."""
  widths = [max(len(column), *(len(str(row.get(column, "-"))) for row in rows)) for column in columns]
  print()
  print("  ".join(column.rjust(width) for column, width in zip(columns, widths)))
  for row in rows:
    print("  ".join(str(row.get(column, "-")).rjust(width) for column, width in zip(columns, widths)))
  output = pathlib.Path(output)
  output.parent.mkdir(parents=True, exist_ok=True)
  output.write_text(json.dumps({**summary, "rows": rows}, indent=2))
  print(f"wrote {output}")


def bad_input(message):
  """Ends the benchmark on input it cannot use: `message` names the problem and the fix."""
  print(f"error: {message}", file=sys.stderr)
  sys.exit(2)
