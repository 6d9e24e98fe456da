"""The web bundle: its Vitest unit tests pass, the first route's JavaScript stays within budget, and
index.html carries no inline script (the CSP forbids it)."""
from __future__ import annotations

import json
import os
import re
import subprocess

from tests.ui.conftest import ROOT

WEB = ROOT / "web"
BUDGET = 500 * 1024
ANSI = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]")  # colour and cursor sequences (CI terminals ask for colour)


def test_vitest_unit_tests_pass():
    # Plain output to read the summary from: no colour even where CI forces it (FORCE_COLOR), and any
    # escape sequence that still comes is stripped before matching.
    env = {key: value for key, value in os.environ.items() if key != "FORCE_COLOR"} | {"NO_COLOR": "1"}
    done = subprocess.run(["npm", "test", "--silent"], cwd=WEB, capture_output=True, text=True, timeout=300, env=env)
    output = ANSI.sub("", done.stdout)
    assert done.returncode == 0, output + ANSI.sub("", done.stderr)
    summary = re.search(r"Tests\s+(\d+) passed", output)
    assert summary and int(summary.group(1)) >= 20, output


def test_first_route_javascript_is_within_budget():
    measured = json.loads((WEB / "dist" / ".vite" / "first-route.json").read_text())
    print(f"first route JavaScript: {measured['gzip_bytes'] / 1024:.1f} KB gzipped in {len(measured['files'])} files")
    assert 0 < measured["gzip_bytes"] <= BUDGET
    assert any("RepositoriesList" in f["file"] for f in measured["files"])
    # Pages other than the first are separate chunks, not in the first route's set.
    assert not any(re.search(r"(RepositoryPage|TagDetails)-", f["file"]) for f in measured["files"])


def test_index_html_has_no_inline_script():
    html = (WEB / "dist" / "index.html").read_text()
    scripts = re.findall(r"<script\b([^>]*)>(.*?)</script>", html, flags=re.S)
    assert scripts and all('src="/assets/' in attrs and not body.strip() for attrs, body in scripts)
    assert not re.search(r"\son[a-z]+=", html)  # no inline event handlers either
