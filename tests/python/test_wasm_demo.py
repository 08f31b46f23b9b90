"""The demo page (wasm/demo) in headless Chromium: it loads
wasm/dist/sparsedge.mjs as an ES module, classifies scikit-image's chelsea.png
with EfficientNet-Lite0 and must show a cat class (281-285) among the top 5;
and its Generate panel streams, from a tiny synthetic llama decoder directory
served next to the page, the continuation sparsedge.Generator (Python) produces.

Needs a built wasm/dist (tests/python/test_wasm.py or wasm/build.sh), PyPI
`playwright` and Debian `chromium` (never `playwright install`); skips with
the reason otherwise.
"""

from __future__ import annotations

import contextlib
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


@contextlib.contextmanager
def _serve(extra: dict[str, Path]):
    """The repository over http on 127.0.0.1, plus /assets/<name> for each of `extra`."""
    if not (DIST / "sparsedge.mjs").exists():
        pytest.skip("wasm/dist not built (wasm/build.sh)")
    handler = type("Handler", (_Handler,), {"extra": extra})
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(handler, directory=str(ROOT)))
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()


@contextlib.contextmanager
def _browser():
    playwright = pytest.importorskip("playwright.sync_api", reason="pip install playwright")
    if not Path(CHROMIUM).exists():
        pytest.skip("chromium not installed (apt-get install chromium)")
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=[
            "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
            "--disable-background-networking", "--disable-component-update", "--disable-sync"])
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture(scope="module")
def server(efficientnet_lite0_path):
    from sparsedge_export import assets

    image = fetch_or_skip(assets.skimage_image, "chelsea.png")
    with _serve({"model.onnx": Path(efficientnet_lite0_path), "chelsea.png": Path(image)}) as url:
        yield url


def test_demo_page_classifies_a_cat(server):
    with _browser() as browser:
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
    assert not errors, errors
    assert status == "Done.", status
    assert len(classes) == 5 and any(281 <= c <= 285 for c in classes), text
    assert "cat" in text.lower(), text  # names from dist/imagenet_classes.json
    assert "sparsedge" in latency and "ms" in latency, latency


@pytest.fixture(scope="module")
def tiny_decoder(tmp_path_factory):
    from test_wasm import build_tiny_decoder, python_generation

    decoder = build_tiny_decoder(tmp_path_factory.mktemp("tiny_decoder"))
    return decoder, python_generation(decoder)


def test_demo_page_generates_pythons_continuation(tiny_decoder):
    from urllib.parse import quote

    decoder, check = tiny_decoder
    greedy = check["greedy"]
    # No generation_config.json on purpose: it is optional (a 404 is skipped).
    files = {f"llm/{name}": decoder / name for name in ("model.onnx", "model.onnx.data", "tokenizer.json")}
    with _serve(files) as server, _browser() as browser:
        page = browser.new_page()
        errors = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        # Count the DOM updates of the output: the text must arrive in pieces.
        page.add_init_script("""
            window.__pieces = 0;
            document.addEventListener('DOMContentLoaded', () => {
              new MutationObserver((records) => { window.__pieces += records.length; })
                .observe(document.getElementById('gen-output'), {childList: true, characterData: true, subtree: true});
            });
        """)
        page.goto(f"{server}/wasm/demo/index.html?llm=/assets/llm/&prompt={quote(greedy['prompt'])}"
                  f"&max_new_tokens={greedy['max_new_tokens']}&max_context={check['max_context']}")
        page.wait_for_function("document.getElementById('gen-status').textContent === 'Done.' || "
                               "document.getElementById('gen-status').className === 'error'", timeout=120_000)
        status = page.text_content("#gen-status")
        output = page.eval_on_selector("#gen-output", "e => e.textContent")
        stats = page.text_content("#gen-stats")
        pieces = page.evaluate("window.__pieces")
    assert not errors, errors
    assert status == "Done.", status
    assert output == greedy["text"], (output, greedy["text"])
    assert f"{len(greedy['prompt_ids'])} prompt tokens, {len(greedy['ids'])} new (max_new_tokens)" in stats, stats
    assert pieces >= len(greedy["pieces"]) // 2, pieces  # streamed, not set once at the end
