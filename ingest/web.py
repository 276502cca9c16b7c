"""Web pages: fetch with timeouts, a size limit, a content-type check and an SSRF guard; same-site crawl; sitemaps.

The guard resolves the host name itself, refuses private, loopback, link-local
and other non-public addresses (unless ``allow_private_urls``), and connects to
the address it checked (so a second DNS answer cannot swap in another one).
Every redirect is checked the same way.
"""

from __future__ import annotations

import ipaddress
import logging
import re
import socket
import time
from collections import deque
from dataclasses import dataclass
from typing import Callable, Iterator
from urllib.parse import urldefrag, urljoin, urlsplit

from rag.errors import IngestError

log = logging.getLogger(__name__)

# Content types hoprag reads → a file name extension that tells the loaders the kind.
CONTENT_TYPES = {
    "text/html": ".html",
    "application/xhtml+xml": ".html",
    "text/plain": ".txt",
    "text/markdown": ".md",
    "text/x-markdown": ".md",
    "text/csv": ".csv",
    "text/tab-separated-values": ".tsv",
    "application/pdf": ".pdf",
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document": ".docx",
    "application/vnd.openxmlformats-officedocument.presentationml.presentation": ".pptx",
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": ".xlsx",
    "image/png": ".png",
    "image/jpeg": ".jpg",
    "image/tiff": ".tif",
}
SITEMAP_TYPES = ("application/xml", "text/xml")
# Links to these are not followed by a crawl.
_SKIP_LINK = re.compile(r"\.(zip|gz|tgz|bz2|xz|7z|rar|exe|dmg|iso|mp[34]|m4a|avi|mov|mkv|webm|ogg|wav|gif|svg|css|js|woff2?)$", re.I)


@dataclass(frozen=True)
class WebOptions:
    allow_private: bool = False  # setting allow_private_urls
    max_bytes: int = 50 * 2**20  # setting max_file_mb
    connect_timeout_s: float = 10.0
    read_timeout_s: float = 20.0  # the longest silence while waiting for data
    total_timeout_s: float = 120.0  # the whole response
    max_redirects: int = 5
    user_agent: str = "hoprag (document ingest)"


@dataclass(frozen=True)
class Fetched:
    url: str  # as asked for (the document's source)
    final_url: str  # after redirects (links resolve against it)
    data: bytes
    content_type: str

    @property
    def name(self) -> str:
        """A file name whose extension gives the loaders the content type."""
        path = urlsplit(self.final_url).path.rstrip("/").rsplit("/", 1)[-1] or "index"
        ext = CONTENT_TYPES.get(self.content_type, "")
        return path if not ext or path.lower().endswith(ext) else path + ext


def is_url(item: object) -> bool:
    return isinstance(item, str) and re.match(r"https?://", item, re.I) is not None


def blocked_reason(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> str:
    """Why ``ip`` is not a public address ('' if it is)."""
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    for label, test in (
        ("loopback", ip.is_loopback),
        ("link-local", ip.is_link_local),
        ("unspecified", ip.is_unspecified),
        ("multicast", ip.is_multicast),
        ("private", ip.is_private),
        ("reserved", ip.is_reserved),
        ("non-public", not ip.is_global),
    ):
        if test:
            return label
    return ""


def resolve(host: str, port: int, options: WebOptions) -> str:
    """The address to connect to for ``host``; every address it resolves to must pass the SSRF guard."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise IngestError(f"cannot resolve host {host} ({exc})") from exc
    addresses = [info[4][0] for info in infos]
    if not options.allow_private:
        for address in addresses:
            why = blocked_reason(ipaddress.ip_address(address.split("%")[0]))
            if why:
                raise IngestError(
                    f"refused {host}: it resolves to {why} address {address} (SSRF guard); "
                    "set allow_private_urls to fetch from private networks"
                )
    return addresses[0]


def fetch(url: str, options: WebOptions = WebOptions()) -> Fetched:
    """GET ``url`` (following checked redirects); :class:`IngestError` with a one-line reason on any failure."""
    current = url
    for _ in range(options.max_redirects + 1):
        pool, response = _get(current, options)
        try:
            if response.status in (301, 302, 303, 307, 308):
                location = response.headers.get("Location")
                if not location:
                    raise IngestError(f"HTTP {response.status} redirect without a Location from {current}")
                current = urljoin(current, location.strip())
                if not is_url(current):
                    raise IngestError(f"redirect to a non-HTTP URL {current[:80]} refused")
                continue
            if response.status != 200:
                raise IngestError(f"HTTP {response.status} {response.reason or ''} from {current}".strip())
            content_type = (response.headers.get("Content-Type") or "").split(";")[0].strip().lower()
            if content_type not in CONTENT_TYPES and content_type not in SITEMAP_TYPES:
                raise IngestError(
                    f"content type {content_type or '(none)'} is not a document hoprag reads "
                    "(HTML, text, Markdown, CSV, PDF, DOCX, PPTX, XLSX, PNG, JPEG, TIFF)"
                )
            return Fetched(url, current, _body(response, current, options), content_type)
        finally:
            response.release_conn()
            pool.close()
    raise IngestError(f"more than {options.max_redirects} redirects from {url}")


def _get(url: str, options: WebOptions):
    import urllib3

    parts = urlsplit(url)
    host = parts.hostname
    if not host:
        raise IngestError(f"URL without a host: {url[:80]}")
    https = parts.scheme.lower() == "https"
    try:
        port = parts.port or (443 if https else 80)
    except ValueError as exc:
        raise IngestError(f"bad port in URL {url[:80]}") from exc
    address = resolve(host, port, options)
    timeout = urllib3.Timeout(connect=options.connect_timeout_s, read=options.read_timeout_s)
    if https:
        pool = urllib3.HTTPSConnectionPool(
            address, port, timeout=timeout, retries=False, server_hostname=host, assert_hostname=host,
            cert_reqs="CERT_REQUIRED",
        )
    else:
        pool = urllib3.HTTPConnectionPool(address, port, timeout=timeout, retries=False)
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    headers = {
        "Host": parts.netloc.rsplit("@", 1)[-1],
        "User-Agent": options.user_agent,
        "Accept": "text/html,application/xhtml+xml,text/plain;q=0.9,*/*;q=0.8",
        "Accept-Encoding": "gzip, deflate",
    }
    try:
        return pool, pool.urlopen("GET", path, headers=headers, redirect=False, preload_content=False, retries=False)
    except urllib3.exceptions.TimeoutError as exc:
        pool.close()
        raise IngestError(f"no answer from {host} within {options.read_timeout_s:g} s (timeout)") from exc
    except urllib3.exceptions.HTTPError as exc:
        pool.close()
        raise IngestError(f"cannot fetch {url[:80]} ({type(exc).__name__}: {str(exc)[:80]})") from exc


def _body(response, url: str, options: WebOptions) -> bytes:
    import urllib3

    limit = options.max_bytes
    too_big = IngestError(f"page {url[:80]} is over the {limit / 2**20:g} MB limit (max_file_mb); refused")
    length = response.headers.get("Content-Length")
    if length and length.isdigit() and int(length) > limit:
        raise too_big
    deadline = time.monotonic() + options.total_timeout_s
    parts, size = [], 0
    try:
        for part in response.stream(256 * 1024, decode_content=True):  # decoded: a gzip bomb hits the limit too
            size += len(part)
            if size > limit:
                raise too_big
            parts.append(part)
            if time.monotonic() > deadline:
                raise IngestError(f"{url[:80]} took over {options.total_timeout_s:g} s to download (timeout)")
    except urllib3.exceptions.TimeoutError as exc:
        raise IngestError(f"{url[:80]} stopped sending within {options.read_timeout_s:g} s (timeout)") from exc
    except urllib3.exceptions.HTTPError as exc:
        raise IngestError(f"download of {url[:80]} failed ({type(exc).__name__})") from exc
    return b"".join(parts)


def _same_site(url: str, root: str) -> bool:
    a, b = urlsplit(url), urlsplit(root)
    return a.scheme.lower() == b.scheme.lower() and (a.hostname or "") == (b.hostname or "") and a.port == b.port


def _links(page: Fetched) -> list[str]:
    from lxml import html as lxml_html

    try:
        tree = lxml_html.fromstring(page.data)
    except (ValueError, lxml_html.etree.ParserError):
        return []
    out = []
    for href in tree.xpath("//a/@href"):
        url = urldefrag(urljoin(page.final_url, str(href).strip()))[0]
        if is_url(url) and not _SKIP_LINK.search(urlsplit(url).path):
            out.append(url)
    return out


def _sitemap_urls(page: Fetched) -> tuple[list[str], list[str]]:
    """(page URLs, nested sitemap URLs) of a sitemap, or two empty lists if ``page`` is not one."""
    from lxml import etree

    parser = etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=False)
    try:
        root = etree.fromstring(page.data, parser)
    except etree.XMLSyntaxError:
        return [], []
    locs = [str(x).strip() for x in root.xpath("//*[local-name()='loc']/text()")]
    tag = etree.QName(root).localname
    if tag == "urlset":
        return locs, []
    if tag == "sitemapindex":
        return [], locs
    return [], []


def crawl(
    url: str,
    options: WebOptions = WebOptions(),
    depth: int = 0,
    max_pages: int = 50,
    note: Callable[[str], None] | None = None,
) -> Iterator[Fetched | tuple[str, str]]:
    """``url`` and, up to ``depth`` links away, the pages of the same site (at most ``max_pages`` in all).

    A sitemap (``urlset`` or ``sitemapindex``) yields the same-site pages it lists
    instead of itself. Yields a :class:`Fetched` per page or ``(url, reason)`` per failure.
    """
    queue: deque[tuple[str, int]] = deque([(url, 0)])
    seen = {url}
    pages = 0
    while queue and pages < max_pages:
        current, level = queue.popleft()
        if note:
            note(current)
        try:
            page = fetch(current, options)
        except IngestError as exc:
            yield current, str(exc)
            pages += 1
            continue
        if page.content_type in SITEMAP_TYPES:
            listed, nested = _sitemap_urls(page)
            if not listed and not nested:
                yield current, "XML that is not a sitemap (urlset or sitemapindex)"
                pages += 1
                continue
            for link in nested + listed:
                if link not in seen and _same_site(link, url):
                    seen.add(link)
                    queue.append((link, level))  # a sitemap's entries are asked for, not crawled into
            continue
        pages += 1
        yield page
        if level < depth and page.content_type in ("text/html", "application/xhtml+xml"):
            for link in _links(page):
                if link not in seen and _same_site(link, url):
                    seen.add(link)
                    queue.append((link, level + 1))
