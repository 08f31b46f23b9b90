"""The demo page (wasm/demo) in headless Chromium: it loads
wasm/dist/sparsedge.mjs as an ES module, classifies scikit-image's chelsea.png
with EfficientNet-Lite0 and must show a cat class (281-285) among the top 5.

Needs a built wasm/dist (tests/python/test_wasm.py or wasm/build.sh), PyPI
`playwright` and Debian `chromium` (never `playwright install`); skips with
the reason otherwise.
"""

from __future__ import annotations

import functools
import http.server
import shutil
import threading
from pathlib import Path

import pytest

from conftest import fetch_or_skip

ROOT = Path(__file__).resolve().parents[2]
DIST = ROOT / "wasm" / "dist"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


class _Handler(http.server.SimpleHTTPRequestHandler):
    """Serves the repository; /assets/<name> from a mapping of extra files."""

    extra: dict[str, Path] = {}

    def translate_path(self, path):
        name = path.split("?", 1)[0]
        if name.startswith("/assets/") and name[len("/assets/"):] in self.extra:
            return str(self.extra[name[len("/assets/"):]])
        return super().translate_path(path)

    def end_headers(self):
        self.send_header("Cache-Control", "no-store")
        super().end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def server(efficientnet_lite0_path):
    from sparsedge_export import assets

    image = fetch_or_skip(assets.skimage_image, "chelsea.png")
    if not (DIST / "sparsedge.mjs").exists():
        pytest.skip("wasm/dist not built (wasm/build.sh)")
    handler = type("Handler", (_Handler,), {"extra": {"model.onnx": Path(efficientnet_lite0_path),
                                                      "chelsea.png": Path(image)}})
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(handler, directory=str(ROOT)))
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()


def test_demo_page_classifies_a_cat(server):
    playwright = pytest.importorskip("playwright.sync_api", reason="pip install playwright")
    if not Path(CHROMIUM).exists():
        pytest.skip("chromium not installed (apt-get install chromium)")
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=[
            "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
            "--disable-background-networking", "--disable-component-update", "--disable-sync"])
        try:
            page = browser.new_page()
            errors = []
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.goto(f"{server}/wasm/demo/index.html?model=/assets/model.onnx&image=/assets/chelsea.png")
            page.wait_for_selector("#latency td", timeout=120_000)
            classes = [int(c) for c in page.eval_on_selector_all(
                "tr.prediction", "rows => rows.map(r => r.dataset.class)")]
            status = page.inner_text("#status")
            text = page.inner_text("#top5")
            latency = page.inner_text("#latency")
        finally:
            browser.close()
    assert not errors, errors
    assert status == "Done.", status
    assert len(classes) == 5 and any(281 <= c <= 285 for c in classes), text
    assert "cat" in text.lower(), text  # names from dist/imagenet_classes.json
    assert "sparsedge" in latency and "ms" in latency, latency
