"""Print the first N lines of the code block that follows a marker in README.md.

    python3 .ci/readme_lines.py "pip set-up" 1

CI runs what this prints, so that README's set-up lines are the ones CI proves.
"""

import re
import sys
from pathlib import Path

marker, count = sys.argv[1], int(sys.argv[2])
readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
found = re.search(rf"<!-- ci: {re.escape(marker)}\b.*?-->\n```\w*\n(.*?)```", readme, re.S)
if found is None:
    sys.exit(f"README.md has no code block marked 'ci: {marker}'")
print("\n".join(found.group(1).splitlines()[:count]))
