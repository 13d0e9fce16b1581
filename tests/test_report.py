"""The HTML report and tables as a person sees them: rendered in headless Chromium.

The fixture suite (chosen numbers, a failed and a missing cell) is aggregated, plotted and reported; the
page is opened in Debian's ``chromium`` (installed by ``scripts/setup.sh --test``), a script measures it
in the browser (sections present in reading order, every figure decoded, no element wider than the
viewport) and writes the result into the DOM, which ``--dump-dom`` returns. Screenshots go to pytest's
temporary folder (never into git). Skips with a reason where Chromium is not installed.
"""

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from workflow_utils import CLAIMS, fixture_suite

from lmht.experiment import FIGURES, SECTIONS, TABLES

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="chromium is not installed (scripts/setup.sh --test)"
)

#: Runs in the page after load: what a reader would notice, as JSON in <pre id="lmht-checks">.
PROBE = """
<script>
window.addEventListener('load', () => {
  const vw = document.documentElement.clientWidth;
  const wide = [];
  for (const el of document.body.querySelectorAll('*')) {
    if (el.closest('.table-wrap') && el.tagName !== 'DIV') continue;  // tables scroll inside their box
    const r = el.getBoundingClientRect();
    if (r.right > vw + 1) wide.push(el.tagName + (el.id ? '#' + el.id : '') + ' ' + Math.round(r.right));
  }
  const imgs = [...document.images].map(i => ({alt: i.alt, w: i.naturalWidth, h: i.naturalHeight}));
  const sections = [...document.querySelectorAll('body > section')].map(s => s.id);
  const pre = document.createElement('pre');
  pre.id = 'lmht-checks';
  pre.textContent = JSON.stringify({vw, wide, imgs, sections,
    pageWidth: document.documentElement.scrollWidth});
  document.body.appendChild(pre);
});
</script>
"""


def browse(page: Path, tmp_path: Path, width: int = 1280) -> dict:
    """Open ``page`` in headless Chromium at ``width`` px; return the probe's measurements; screenshot it."""
    probed = tmp_path / f"probed-{page.stem}-{width}.html"
    probed.write_text(
        page.read_text(encoding="utf-8").replace("</body>", PROBE + "</body>"), encoding="utf-8"
    )
    flags = [
        CHROMIUM,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--hide-scrollbars",
        f"--window-size={width},2000",
    ]
    dom = subprocess.run(
        [*flags, "--virtual-time-budget=5000", "--dump-dom", probed.as_uri()],
        capture_output=True,
        text=True,
        timeout=120,
    ).stdout
    subprocess.run(
        [*flags, f"--screenshot={tmp_path / (probed.stem + '.png')}", probed.as_uri()],
        capture_output=True,
        timeout=120,
    )
    found = re.search(r'<pre id="lmht-checks">(.*?)</pre>', dom, re.S)
    assert found, f"the probe did not run in Chromium: {dom[:500]}"
    return json.loads(found.group(1).replace("&quot;", '"').replace("&amp;", "&"))


@pytest.fixture(scope="module")
def report_dir(tmp_path_factory):
    from lmht.experiment.results import aggregate, build_report, load_suite
    from lmht.experiment.results.plots import plots

    root = tmp_path_factory.mktemp("report")
    config = fixture_suite(root / "results")
    aggregate(config, "fixture", CLAIMS, root / "tables")
    plots(load_suite(config, "fixture", CLAIMS), root / "figures")
    build_report(config, "fixture", CLAIMS, root / "figures", root / "report.html")
    return root


@pytest.mark.parametrize("width", [1280, 800])
def test_report_reads_top_down_and_nothing_overflows(report_dir, tmp_path, width):
    checks = browse(report_dir / "report.html", tmp_path, width)
    assert checks["sections"] == ["summary", *(f"section-{k}" for k in SECTIONS)]
    assert len(checks["imgs"]) == len(FIGURES)
    assert all(i["w"] > 100 and i["h"] > 100 for i in checks["imgs"]), checks["imgs"]
    assert checks["wide"] == [] and checks["pageWidth"] <= checks["vw"], checks["wide"][:10]
    page = (report_dir / "report.html").read_text()
    for entry in TABLES.values():
        assert f'id="table-{entry.name}"' in page
    # the landing summary counts runs and verdicts; failures are listed with their reason
    assert "CUDA out of memory" in page and "not run" in page and "manifest" not in page


@pytest.mark.parametrize("name", sorted(TABLES))
def test_every_table_page_renders_without_overflow(report_dir, tmp_path, name):
    checks = browse(report_dir / "tables" / f"{name}.html", tmp_path, 1024)
    assert checks["wide"] == [] and checks["pageWidth"] <= checks["vw"], checks["wide"][:10]


def test_report_script_writes_the_page(report_dir, tmp_path):
    """The workflow's adapter (workflow/scripts/report.py) writes the same page from a config file."""
    import yaml

    config = fixture_suite(tmp_path / "results")
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config))
    out = tmp_path / "report.html"
    script = Path(__file__).resolve().parents[1] / "workflow" / "scripts" / "report.py"
    res = subprocess.run(
        [
            sys.executable,
            str(script),
            "--config",
            str(tmp_path / "config.yaml"),
            "--suite",
            "fixture",
            "--out",
            str(out),
            "--figures",
            str(report_dir / "figures"),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert res.returncode == 0, res.stderr
    assert out.stat().st_size > 10_000


def test_report_of_a_suite_where_nothing_ran(tmp_path):
    """No run record at all: every table, figure and the report still build and say what is missing."""
    from lmht.experiment.results import aggregate, build_report, load_suite
    from lmht.experiment.results.plots import plots

    config = fixture_suite(tmp_path / "results")
    for path in (tmp_path / "results").rglob("metrics.json"):
        path.unlink()
    aggregate(config, "fixture", CLAIMS, tmp_path / "tables")
    plots(load_suite(config, "fixture", CLAIMS), tmp_path / "figures")
    page = build_report(config, "fixture", CLAIMS, tmp_path / "figures", tmp_path / "report.html").read_text()
    assert "0 finished" in page and "not answered" in page
