"""The built site as a reader sees it: API examples as code, math from a script shipped with it.

Builds the site once (``mkdocs build --strict`` into a temporary folder, about 15 s) and reads
its HTML. What a browser makes of it was checked by eye with headless Chromium (see
docs/installation.md); these tests pin what that depends on.
"""

import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path
from urllib.parse import urljoin, urlparse

import pytest

ROOT = Path(__file__).resolve().parents[1]
API_PAGES = ("recurrent_params", "optim", "diagnostics")
MATHJAX = "javascripts/vendor/mathjax/es5/tex-mml-chtml.js"
HIGHLIGHT = re.compile(r'<div class="highlight"><pre>.*?</pre></div>', re.S)
SCRIPT_SRC = re.compile(r'<script[^>]*\ssrc="([^"]+)"')

pytestmark = pytest.mark.slow


def _load_vendor():
    spec = importlib.util.spec_from_file_location("docs_vendor", ROOT / "docs/hooks/vendor.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("site")
    env = dict(os.environ, NO_MKDOCS_2_WARNING="1")
    proc = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--quiet", "--site-dir", str(out)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, f"mkdocs build --strict failed:\n{proc.stdout}\n{proc.stderr}"
    return out


def _page(site: Path, name: str) -> str:
    return (site / f"{name}.html").read_text(encoding="utf-8")


def _local_file(site: Path, page: str, src: str) -> Path:
    """The file a relative ``src`` on ``page`` points to inside the built site."""
    url = urljoin(f"file:///{page}.html", src)
    return site / urlparse(url).path.lstrip("/")


@pytest.mark.parametrize("name", API_PAGES)
def test_api_examples_are_highlighted_code(site, name):
    html = _page(site, f"api/{name}")
    blocks = HIGHLIGHT.findall(html)
    prompts = [b for b in blocks if '<span class="gp">&gt;&gt;&gt; </span>' in b]
    assert prompts, f"api/{name}: no example rendered as a highlighted >>> code block"
    rest = HIGHLIGHT.sub("", html)
    assert "&gt;&gt;&gt;" not in rest, f"api/{name}: a >>> prompt outside a code block"
    assert "<blockquote>" not in rest, f"api/{name}: an example rendered as block quotes"
    assert "doctest:" not in html, f"api/{name}: a '# doctest:' flag shows"
    roles = re.findall(r":(?:class|func|meth|mod|attr|exc):<code>", html)
    assert not roles, f"api/{name}: Sphinx roles left in the text: {roles[:3]}"


def test_example_output_lines_survive(site):
    # An output line such as `tensor(..., grad_fn=<ExpBackward0>)` must not vanish as an HTML tag.
    html = _page(site, "api/recurrent_params")
    assert "grad_fn=&lt;ExpBackward0&gt;" in html


@pytest.mark.parametrize("name", ["index", "concepts/curse_of_memory", "concepts/lsc",
                                  "api/recurrent_params"])
def test_math_uses_the_shipped_mathjax(site, name):
    html = _page(site, name)
    assert 'class="arithmatex"' in html, f"{name}: no math on the page to check"
    sources = SCRIPT_SRC.findall(html)
    remote = [s for s in sources if urlparse(s).scheme or s.startswith("//")]
    assert not remote, f"{name}: scripts loaded from the network: {remote}"
    mathjax = [s for s in sources if s.endswith(MATHJAX)]
    assert mathjax, f"{name}: no <script> for the local {MATHJAX}"
    assert _local_file(site, name, mathjax[0]).is_file()


def test_site_has_no_remote_styles_or_fonts(site):
    for page in site.rglob("*.html"):
        links = re.findall(r'<link[^>]*\shref="((?:https?:)?//[^"]+)"', page.read_text("utf-8"))
        styles = [u for u in links if "fonts.g" in u or u.endswith(".css")]
        assert not styles, f"{page.relative_to(site)} loads {styles}"


def test_mathjax_and_search_work_from_the_file_system(site):
    es5 = site / "javascripts/vendor/mathjax/es5"
    # CHTML fonts and TeX extensions that MathJax loads lazily, relative to its script
    assert (es5 / "output/chtml/fonts/woff-v2/MathJax_Main-Regular.woff").is_file()
    assert (es5 / "input/tex/extensions/boldsymbol.js").is_file()
    assert (site / "javascripts/vendor/mathjax/LICENSE").is_file()
    # the offline plugin: page.html links, an inlined search index, a local iframe-worker shim
    index = _page(site, "index")
    assert 'href="concepts/curse_of_memory.html"' in index
    assert (site / "search/search_index.js").is_file()
    shim = [s for s in SCRIPT_SRC.findall(index) if "iframe-worker" in s]
    assert shim and _local_file(site, "index", shim[0]).is_file()
    assert not (site / "hooks").exists(), "the build hooks were copied into the site"


def test_vendor_refuses_a_tarball_that_does_not_match_its_pin(tmp_path):
    vendor = _load_vendor()
    pin = vendor.PINS[0]
    assert vendor.missing(tmp_path) == [p.spec for p in vendor.PINS]
    with pytest.raises(SystemExit, match="does not match the pin"):
        vendor._check_integrity(pin, b"tampered")
