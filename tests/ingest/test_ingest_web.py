"""Web pages from a real HTTP server on loopback: fetch, crawl, sitemap, SSRF guard, timeouts, size limit."""

from __future__ import annotations

import ipaddress
import time
from http.server import BaseHTTPRequestHandler

import pytest
from fakes import loopback_http
from ingest_files import HTML

import ingest.web as web
from ingest.pipeline import IngestOptions, Ingestor


def page(title: str, body: str, links: tuple[str, ...] = ()) -> bytes:
    anchors = " ".join(f'<a href="{href}">{href}</a>' for href in links)
    return (
        f"<!DOCTYPE html><html><head><title>{title}</title></head><body><article><h1>{title}</h1>"
        f"<p>{body}</p><p>{anchors}</p></article></body></html>"
    ).encode()


class Site:
    """Routes of the loopback server; tests change ``pages`` to change what it serves."""

    def __init__(self) -> None:
        self.pages = {
            "/a.html": page("Page A", "Alpacas graze on the Altiplano in large herds.", ("/b.html", "https://example.org/x")),
            "/b.html": page("Page B", "Spinning alpaca fibre needs a wheel and patience.", ("/c.html", "/a.html#top")),
            "/c.html": page("Page C", "The loom in Cusco was built by Rosa Quispe in 1931.", ("/a.html", "/d.html")),
            "/d.html": page("Page D", "Three links away from A: a crawl of depth 2 never gets here."),
            "/textiles.html": HTML.encode(),
        }
        self.requests: list[str] = []


@pytest.fixture
def site():
    state = Site()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.0"

        def log_message(self, *args) -> None:
            pass

        def send(self, status: int, body: bytes, ctype: str = "text/html; charset=utf-8", **headers) -> None:
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            for name, value in headers.items():
                self.send_header(name.replace("_", "-"), value)
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:  # noqa: N802
            state.requests.append(self.path)
            base = f"http://127.0.0.1:{self.server.server_port}"
            if self.path in state.pages:
                self.send(200, state.pages[self.path])
            elif self.path == "/to-metadata":
                self.send(302, b"", Location="http://169.254.169.254/latest/meta-data/")
            elif self.path == "/to-a":
                self.send(301, b"", Location="/a.html")
            elif self.path == "/never":
                time.sleep(5)  # accepts the connection, never answers in time
            elif self.path == "/huge-declared":
                self.send(200, b"", Content_Length=str(200 * 2**20))
            elif self.path == "/huge-streamed":
                self.send_response(200)
                self.send_header("Content-Type", "text/html")
                self.end_headers()
                block = b"<p>" + b"x" * (2**20 - 7) + b"</p>\n"
                try:
                    self.wfile.write(b"<!DOCTYPE html><html><body>")
                    for _ in range(200):  # 200 MB, with no Content-Length
                        self.wfile.write(block)
                except (BrokenPipeError, ConnectionResetError):
                    pass
            elif self.path == "/binary":
                self.send(200, b"\x00\x01", "application/octet-stream")
            elif self.path == "/sitemap.xml":
                urls = "".join(f"<url><loc>{base}{p}</loc></url>" for p in ("/a.html", "/c.html"))
                xml = f'<?xml version="1.0"?><urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">{urls}</urlset>'
                self.send(200, xml.encode(), "application/xml")
            else:
                self.send(404, b"not found")

    with loopback_http(Handler) as state.base:
        yield state


LOOPBACK = IngestOptions(allow_private_urls=True, workers=0, web_timeout_s=1.0)


def test_a_page_is_fetched_and_its_main_text_indexed(store, embedder, site):
    report = Ingestor(store, embedder, LOOPBACK).ingest([site.base + "/textiles.html"])
    assert report.ok, report
    doc = store.documents()[0]
    assert doc.source == site.base + "/textiles.html" and doc.title == "Andean Textiles"
    hit = store.bm25_search("warp-faced technique", 1)[0]
    assert hit.chunk.source == site.base + "/textiles.html" and "NAVJUNK" not in hit.chunk.text


def test_crawl_of_three_linked_pages_stays_on_the_site(store, embedder, site):
    report = Ingestor(store, embedder, IngestOptions(allow_private_urls=True, crawl_depth=2)).ingest(
        [site.base + "/a.html"]
    )
    assert [f.source.rsplit("/", 1)[-1] for f in report.files] == ["a.html", "b.html", "c.html"]
    assert report.ok and "/d.html" not in site.requests  # depth 2: A -> B -> C
    assert store.bm25_search("Rosa Quispe loom", 1)[0].chunk.source == site.base + "/c.html"
    limited = Ingestor(store, embedder, IngestOptions(allow_private_urls=True, crawl_depth=5, max_pages=2))
    assert len(limited.ingest([site.base + "/a.html"]).files) == 2


def test_sitemap_lists_the_pages(store, embedder, site):
    report = Ingestor(store, embedder, LOOPBACK).ingest([site.base + "/sitemap.xml"])
    assert [f.source for f in report.files] == [site.base + "/a.html", site.base + "/c.html"]


def test_loopback_is_refused_by_default_before_any_request(store, embedder, site):
    report = Ingestor(store, embedder, IngestOptions(workers=0)).ingest([site.base + "/a.html"])
    reason = report.files[0].reason
    assert "resolves to loopback address 127.0.0.1 (SSRF guard)" in reason and "allow_private_urls" in reason
    assert site.requests == []


def test_a_redirect_to_a_private_address_is_refused(store, embedder, site, monkeypatch):
    # Let 127.0.0.1 pass as if it were a public server; every other address keeps the real rule.
    real = web.blocked_reason
    monkeypatch.setattr(web, "blocked_reason", lambda ip: "" if str(ip) == "127.0.0.1" else real(ip))
    report = Ingestor(store, embedder, IngestOptions(workers=0)).ingest([site.base + "/to-metadata", site.base + "/to-a"])
    assert report.files[0].status == "failed"
    assert "refused 169.254.169.254: it resolves to link-local address" in report.files[0].reason
    assert report.files[1].status == "added"  # a redirect within the site is followed
    assert site.requests == ["/to-metadata", "/to-a", "/a.html"]


def test_the_guard_classifies_addresses():
    for address, why in [
        ("10.1.2.3", "private"), ("192.168.0.1", "private"), ("172.16.0.1", "private"), ("127.0.0.1", "loopback"),
        ("::1", "loopback"), ("169.254.169.254", "link-local"), ("fe80::1", "link-local"), ("0.0.0.0", "unspecified"),
        ("::ffff:10.0.0.1", "private"), ("100.64.0.1", "non-public"), ("224.0.0.1", "multicast"),
        ("93.184.216.34", ""), ("2606:4700::1111", ""),
    ]:
        assert web.blocked_reason(ipaddress.ip_address(address)) == why, address


def test_timeouts_size_limit_and_content_type_fail_their_url_only(store, embedder, site):
    urls = [site.base + p for p in ("/never", "/huge-declared", "/huge-streamed", "/binary", "/missing", "/a.html")]
    t0 = time.monotonic()
    report = Ingestor(store, embedder, LOOPBACK).ingest(urls)
    assert time.monotonic() - t0 < 20
    reasons = [f.reason for f in report.files]
    assert "within 1 s (timeout)" in reasons[0]
    assert "over the 50 MB limit (max_file_mb)" in reasons[1] and "over the 50 MB limit" in reasons[2]
    assert "content type application/octet-stream is not a document hoprag reads" in reasons[3]
    assert reasons[4].startswith("HTTP 404")
    assert report.files[5].status == "added"
    assert [d.source for d in store.documents(include_pending=True)] == [site.base + "/a.html"]


def test_reingest_refetches_and_embeds_only_changed_chunks(store, embedder, site, monkeypatch):
    paragraphs = [f"Paragraph {i} tells how the herd of station {i} spent the winter of {1900 + i}." for i in range(40)]
    site.pages["/long.html"] = page("Herd diary", "</p><p>".join(paragraphs))
    url = site.base + "/long.html"
    ingestor = Ingestor(store, embedder, LOOPBACK)
    first = ingestor.ingest([url]).files[0]
    assert first.status == "added" and first.chunks >= 3
    assert ingestor.ingest([url]).files[0].status == "unchanged"
    assert site.requests.count("/long.html") == 2  # fetched again, found unchanged

    paragraphs[-1] = "Paragraph 39 was rewritten: the herd moved to the lower valley."
    site.pages["/long.html"] = page("Herd diary", "</p><p>".join(paragraphs))
    embedded: list[str] = []
    real = embedder.embed
    monkeypatch.setattr(embedder, "embed", lambda texts, *a, **k: embedded.extend(texts) or real(texts, *a, **k))
    again = ingestor.ingest([url]).files[0]
    assert again.status == "replaced" and len(store.documents()) == 1
    assert 1 <= len(embedded) < again.chunks and all("Paragraph 39" in t or "rewritten" in t for t in embedded)
