"""The status page in a real browser: headless Chromium (Debian's chromium) loads the page of a
live daemon, its DOM is checked (services grouped, the failing one first, links to the service
pages, the chart, no script, nothing fetched from elsewhere) and a screenshot is kept as a test
artefact in $MW_BUILDDIR/test-artifacts/.
"""

import html.parser
import os
import shutil
import subprocess

import lib
import test_http

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


class Dom(html.parser.HTMLParser):
    """The elements the checks look at: (tag, attrs) in document order."""

    def __init__(self):
        super().__init__()
        self.elements = []

    def handle_starttag(self, tag, attrs):
        self.elements.append((tag, dict(attrs)))

    def find(self, tag, **attrs):
        return [a for t, a in self.elements if t == tag and all(a.get(k) == v for k, v in attrs.items())]


def chromium(url, *extra, timeout=90):
    profile = lib.tmpdir("chromium-profile")
    argv = [CHROMIUM, "--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run",
            "--disable-dev-shm-usage", "--user-data-dir=" + profile, "--window-size=1200,800",
            "--disable-background-networking", "--disable-component-update", "--disable-sync",
            "--proxy-server=127.0.0.1:9", "--proxy-bypass-list=127.0.0.1"] + list(extra) + [url]
    env = dict(os.environ, HOME=profile)
    r = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, env=env)
    return r


def test_status_page_in_headless_chromium():
    lib.expect_true(os.path.exists(CHROMIUM), "chromium is installed (Debian package chromium)")
    site = test_http.Site().start()
    try:
        user, password = test_http.VIEWER
        url = "http://%s:%s@127.0.0.1:%d/" % (user, password, site.port)
        r = chromium(url, "--dump-dom")
        lib.expect_eq(r.returncode, 0, "chromium exit status (stderr: %s)" % r.stderr[-500:])
        dom = Dom()
        dom.feed(r.stdout)
        rows = dom.find("tr")
        services = [a.get("data-service") for a in rows if a.get("data-service")]
        lib.expect_eq(services, ["down", "up"], "services in the DOM, the failing one first")
        lib.expect_eq([a["class"] for a in rows if a.get("data-service")],
                      ["service failed", "service ok"], "row classes")
        links = [a["href"] for a in dom.find("a") if a.get("href", "").startswith("/service/")]
        lib.expect_eq(links, ["/service/down", "/service/up"], "links to the service pages")
        lib.expect_eq(dom.find("script"), [], "no script")
        external = [a for t, a in dom.elements for k in ("src", "href")
                    if a.get(k, "").startswith(("http:", "https:", "//"))]
        lib.expect_eq(external, [], "nothing fetched from elsewhere")
        lib.expect_in('id="summary">2 services: 1 failed, 1 ok, 0 other', r.stdout, "summary line")

        page = chromium("http://%s:%s@127.0.0.1:%d/service/down" % (user, password, site.port),
                        "--dump-dom")
        dom = Dom()
        dom.feed(page.stdout)
        lib.expect_eq(len(dom.find("svg")), 1, "one chart on the service page")
        lib.expect_eq(len(dom.find("polyline")), 1, "the response-time line")

        artefacts = os.path.join(lib.BUILDDIR, "test-artifacts")
        os.makedirs(artefacts, exist_ok=True)
        shot = os.path.join(artefacts, "status-page.png")
        if os.path.exists(shot):
            os.unlink(shot)
        r = chromium(url, "--screenshot=" + shot, "--hide-scrollbars")
        lib.expect_eq(r.returncode, 0, "screenshot taken (stderr: %s)" % r.stderr[-500:])
        with open(shot, "rb") as f:
            lib.expect_eq(f.read(8), b"\x89PNG\r\n\x1a\n", "a PNG screenshot")
        lib.note("screenshot of the status page: " + shot)
    finally:
        site.close()
