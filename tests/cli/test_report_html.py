"""`points report html`: one self-contained page, checked as text and in headless Chromium.

The browser test needs the Debian package `chromium` (`.ci/run` installs it when
/usr/bin/chromium is missing). Without it the test is skipped locally and fails
under CI (CI=true), so CI always renders the page. Its screenshot is kept as a test
artifact: `report-html.png` in the test's temporary folder (pytest keeps the last
three runs under /tmp/pytest-of-$USER/), and also in $POINTS_TEST_ARTIFACTS if set.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import pytest
from click.testing import CliRunner

from points.cli.main import cli
from tests.cli.test_reports import demo  # noqa: F401 - the demo journal fixture

pytestmark = pytest.mark.slow  # matplotlib draws six charts: ~3 s, the browser as much again

CHARTS = ("burn-down", "awards", "outstanding", "flows")
TABLES = ("trial-balance", "balances", "payouts", "awards", "outstanding", "flows")


class Page(HTMLParser):
    """Counts, per chart, the SVG shapes inside it and, per table, its body rows and cells."""

    def __init__(self) -> None:
        super().__init__()
        self.shapes: dict[str, int] = {}
        self.rows: dict[str, int] = {}
        self.cells: dict[str, int] = {}
        self.external: list[str] = []
        self.tags: set[str] = set()
        self._chart = self._table = None
        self._in_body = False

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        self.tags.add(tag)
        for name in ("src", "href", "xlink:href", "action", "data"):
            value = a.get(name) or ""
            if value and not value.startswith("#"):
                self.external.append(f"{tag} {name}={value}")
        if tag == "figure" and (a.get("id") or "").startswith("chart-"):
            self._chart = a["id"][len("chart-"):]
            self.shapes[self._chart] = 0
        elif tag in ("path", "rect", "line", "polyline", "use") and self._chart:
            self.shapes[self._chart] += 1
        elif tag == "table" and (a.get("id") or "").startswith("table-"):
            self._table = a["id"][len("table-"):]
            self.rows[self._table] = self.cells[self._table] = 0
        elif tag == "tbody":
            self._in_body = True
        elif tag == "tr" and self._table and self._in_body:
            self.rows[self._table] += 1
        elif tag == "td" and self._table:
            self.cells[self._table] += 1

    def handle_endtag(self, tag):
        if tag == "figure":
            self._chart = None
        elif tag == "table":
            self._table, self._in_body = None, False


def _parse(text: str) -> Page:
    page = Page()
    page.feed(text)
    return page


def _check(page: Page) -> None:
    assert set(page.shapes) == set(CHARTS)
    for name, n in page.shapes.items():
        assert n >= 10, f"chart {name} has only {n} shapes"
    assert set(page.rows) == set(TABLES)
    for name in TABLES:
        assert page.rows[name] >= 2 and page.cells[name] > page.rows[name], f"table {name} is empty"


@pytest.fixture(scope="module")
def page_file(demo, tmp_path_factory):  # noqa: F811
    out = tmp_path_factory.mktemp("html") / "report.html"
    result = CliRunner().invoke(cli, ["--db", str(demo.path), "report", "html", "-o", str(out),
                                      "--as-of", "2026-03-31"], catch_exceptions=False)
    assert result.exit_code == 0 and result.output == f"wrote {out}\n"
    return out


def test_page_has_every_chart_and_table_and_loads_nothing(page_file):
    text = page_file.read_text(encoding="utf-8")
    page = _parse(text)
    _check(page)
    assert not page.external, page.external
    assert not {"script", "link", "img", "iframe", "object", "embed"} & page.tags
    assert not re.search(r"url\((?!#)", text) and "@import" not in text  # url(#clip) is in-page
    # the figures beside the charts are the ledger's: the trial balance's total line, yearend-2025's net
    assert "sums to zero per kind: yes" in text
    assert re.search(r"<td>yearend-2025</td><td>main</td><td>basic</td>(<td class='n'>[\d,]+</td>){2}"
                     r"<td class='n'>90,000</td>", text)


def test_as_of_all_entries_and_a_directory_target(demo, tmp_path):  # noqa: F811
    out = tmp_path / "all.html"
    assert CliRunner().invoke(cli, ["--db", str(demo.path), "report", "html", "-o", str(out)]).exit_code == 0
    page = _parse(out.read_text(encoding="utf-8"))
    assert page.rows["outstanding"] == 1  # everything expired by 2028-12-31: only the total row
    assert "nothing outstanding" in out.read_text(encoding="utf-8")
    result = CliRunner().invoke(cli, ["--db", str(demo.path), "report", "html", "-o", str(tmp_path)])
    assert result.exit_code == 2


def _chromium() -> str | None:
    return shutil.which("chromium") or (str(Path("/usr/bin/chromium")) if Path("/usr/bin/chromium").exists()
                                        else None)


def test_page_renders_in_headless_chromium(page_file, tmp_path):
    browser = _chromium()
    if browser is None:
        if os.environ.get("CI"):
            pytest.fail("chromium is missing under CI: .ci/run should have installed it")
        pytest.skip("chromium is not installed (Debian: apt-get install chromium; .ci/run installs it)")
    flags = [browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
             "--disable-component-update", "--no-first-run", f"--user-data-dir={tmp_path / 'profile'}",
             "--hide-scrollbars"]
    url = page_file.resolve().as_uri()
    dom = subprocess.run([*flags, "--dump-dom", url], capture_output=True, text=True, timeout=120)
    assert dom.returncode == 0, dom.stderr[-2000:]
    _check(_parse(dom.stdout))
    shot = tmp_path / "report-html.png"
    done = subprocess.run([*flags, "--window-size=1400,3600", f"--screenshot={shot}", url],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and shot.exists(), done.stderr[-2000:]
    keep = os.environ.get("POINTS_TEST_ARTIFACTS")
    if keep:
        Path(keep).mkdir(parents=True, exist_ok=True)
        shutil.copy(shot, Path(keep) / shot.name)
    from PIL import Image

    image = Image.open(shot).convert("RGB")
    assert image.size == (1400, 3600)
    colours = image.getcolors(maxcolors=1 << 20)
    blue = sum(n for n, c in colours if abs(c[0] - 0x1F) < 12 and abs(c[1] - 0x77) < 12 and abs(c[2] - 0xB4) < 12)
    assert blue > 5_000, "the charts' blue (basic points) is missing from the screenshot"
    assert len(colours) > 50
