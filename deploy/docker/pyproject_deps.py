"""Print the third-party dependencies declared by the given pyproject.toml
files, one requirement a line, for `pip install -c constraints.txt -r -`.

Our own packages (supportdesk-*) are left out: the Dockerfile installs them
from the tree afterwards with --no-deps. Optional extras are not included.

    python pyproject_deps.py libs/*/pyproject.toml services/gateway/pyproject.toml
"""

import re
import sys
import tomllib

OWN = re.compile(r"^supportdesk[-_.]", re.IGNORECASE)


def third_party(paths: list[str]) -> list[str]:
    found: dict[str, None] = {}
    for path in paths:
        with open(path, "rb") as f:
            project = tomllib.load(f).get("project", {})
        for requirement in project.get("dependencies", []):
            if not OWN.match(requirement.strip()):
                found[requirement.strip()] = None
    return sorted(found, key=str.lower)


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    print("\n".join(third_party(sys.argv[1:])))  # noqa: T201
