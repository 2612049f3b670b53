"""examples/walkthrough.ipynb, executed headless by a real kernel (nbclient + ipykernel),
then exported to HTML (nbconvert) and rendered in headless Chromium: the chain diagram,
the placement waterfall and the simulation plots must be on the page, and not blank."""

from __future__ import annotations

import io
import json
import re
import subprocess
from pathlib import Path

import pytest
from ipython_helpers import FLAGSHIP, WALKTHROUGH, chromium_path

import mosaico_dsl as mo


def code_cells(nb):
    return [c for c in nb.cells if c.cell_type == "code"]


def cell_starting(nb, prefix: str):
    return next(c for c in code_cells(nb) if c.source.startswith(prefix))


def html_of(cell) -> str:
    return "".join(o.get("data", {}).get("text/html", "") for o in cell.outputs)


def test_the_committed_notebook_is_clean_and_valid():
    import nbformat

    nb = nbformat.read(WALKTHROUGH, as_version=4)
    nbformat.validate(nb)
    assert all(not c.outputs and c.execution_count is None for c in code_cells(nb)), \
        "commit the walkthrough without outputs (the tests execute it)"


def test_the_walkthrough_is_the_flagship_scenario():
    """Its program is examples/secure_l4s.mosaico's: the same checked IR."""
    import nbformat

    nb = nbformat.read(WALKTHROUGH, as_version=4)
    cell = cell_starting(nb, "%%mosaico flagship")
    body = cell.source.split("\n", 1)[1]
    assert mo.check(body) == mo.check(FLAGSHIP)


@pytest.mark.slow
def test_every_cell_runs_and_the_deliberate_mistake_is_a_diagnostic(executed_walkthrough):
    nb, cwd = executed_walkthrough
    for cell in code_cells(nb):
        assert cell.execution_count is not None
        tagged = "raises-exception" in cell.metadata.get("tags", [])
        errors = [o for o in cell.outputs if o.output_type == "error"]
        assert not errors, f"cell failed: {cell.source[:80]!r}: {errors[0].get('evalue')}"
        if tagged:  # it failed, as meant — shown as a diagnostic, not a traceback
            text = "".join(o.get("data", {}).get("text/plain", "") for o in cell.outputs)
            assert "error[E0302]" in text and "^^^^^^" in text and "12Mbps" in text
            assert "Traceback" not in text
            assert "error[E0302]" in html_of(cell)
    # Generate wrote the build directory where the notebook ran.
    assert (cwd / "build" / "walkthrough" / "s1" / "s1.p4").is_file()


@pytest.mark.slow
def test_the_outputs_hold_the_diagrams_plots_code_and_progress(executed_walkthrough):
    nb, _ = executed_walkthrough
    write = html_of(cell_starting(nb, "%%mosaico flagship"))
    assert "mosaico-chain" in write and "Blocklist" in write
    placement = html_of(cell_starting(nb, "placed = %mosaico place"))
    assert "mosaico-topology" in placement and "mosaico-waterfall" in placement
    assert "mosaico-progress" in placement and "placing" in placement
    p4 = html_of(cell_starting(nb, "from mosaico_dsl.display import p4_sources"))
    assert "mosaico-p4" in p4 and "MosaicoIngress" in re.sub(r"<[^>]+>", "", p4)
    sim = html_of(cell_starting(nb, "sim = %mosaico sim"))
    assert "mosaico-qdelay_cdf" in sim and "mosaico-throughput" in sim
    assert "simulating" in sim and "2/2 s" in re.sub(r"<[^>]+>", "", sim)


# ----------------------------------------------------------------------------- Chromium

# Measures the elements that must be visible, after the page (and its images) loaded; the
# result is appended at the end of the body so it moves nothing it measures.
_MEASURE = """<script>
window.addEventListener('load', function () {
  function boxes(sel) {
    // What a reader sees: not what sits in a closed <details>.
    return Array.from(document.querySelectorAll(sel)).filter(function (e) {
      return e.closest('details:not([open])') === null;
    }).map(function (e) {
      var r = e.getBoundingClientRect();
      return [r.left + window.scrollX, r.top + window.scrollY, r.width, r.height];
    });
  }
  var out = {chain: boxes('.mosaico-chain svg'), waterfall: boxes('img.mosaico-waterfall'),
             cdf: boxes('img.mosaico-qdelay_cdf'), throughput: boxes('img.mosaico-throughput'),
             height: document.documentElement.scrollHeight};
  var pre = document.createElement('pre');
  pre.id = 'mosaico-boxes';
  pre.textContent = JSON.stringify(out);
  document.body.appendChild(pre);
});
</script>"""
_WIDTH = 1280


def _chromium(args: list[str], profile: Path, timeout: float = 180) -> subprocess.CompletedProcess:
    cmd = [chromium_path(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
           "--no-first-run", "--disable-background-networking", "--disable-component-update",
           "--disable-sync", f"--user-data-dir={profile}", "--hide-scrollbars",
           "--force-device-scale-factor=1",
           # The page is self-contained; nbconvert's CDN scripts must fail at once, offline.
           "--host-resolver-rules=MAP * ~NOTFOUND", "--virtual-time-budget=10000", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=True)


@pytest.mark.slow
@pytest.mark.chromium
def test_chromium_renders_the_chain_diagram_and_plots(executed_walkthrough, tmp_path):
    import numpy as np
    from nbconvert import HTMLExporter
    from PIL import Image

    nb, _ = executed_walkthrough
    body, _ = HTMLExporter(template_name="lab").from_notebook_node(nb)
    page = tmp_path / "walkthrough.html"
    page.write_text(body.replace("</body>", _MEASURE + "</body>"), encoding="utf-8")
    url = page.as_uri()

    dom = _chromium([f"--window-size={_WIDTH},1000", "--dump-dom", url], tmp_path / "p1")
    found = re.search(r'<pre id="mosaico-boxes">([^<]*)</pre>', dom.stdout)
    assert found, "the page did not finish loading in Chromium"
    boxes = json.loads(found.group(1).replace("&quot;", '"'))
    height = int(boxes["height"]) + 50

    shot = tmp_path / "walkthrough.png"
    _chromium([f"--window-size={_WIDTH},{height}", f"--screenshot={shot}", url],
              tmp_path / "p2")
    image = Image.open(io.BytesIO(shot.read_bytes())).convert("RGB")
    assert image.size == (_WIDTH, height)

    for what in ("chain", "waterfall", "cdf", "throughput"):
        assert boxes[what], f"no {what} on the rendered page"
        for x, y, w, h in boxes[what]:
            assert w > 100 and h > 100, f"{what} rendered at {w}x{h}"
            region = np.asarray(image.crop((int(x), int(y), int(x + w), int(y + h))))
            # Drawn pixels: anything not (near) white, the page's background.
            inked = int((region.min(axis=2) < 200).sum())
            assert inked > 0.01 * w * h, f"{what} at {(x, y)} is blank ({inked} inked pixels)"
