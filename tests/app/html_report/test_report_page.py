"""`airis report` pages rendered by a real headless Chromium (Debian's, `deploy/chromium.sh`):
every chart drew (its canvas has ink), the SVG figures are there, the browser logged nothing,
and the screenshot is a picture, not a blank page."""

from __future__ import annotations

import re
import struct
import subprocess
import zlib
from pathlib import Path

import pytest

from airis.app.html_report import render_page

REPO = Path(__file__).resolve().parents[3]
WIDTH, HEIGHT = 1400, 1800


@pytest.fixture(scope="module")
def chromium() -> str:
    done = subprocess.run(["bash", str(REPO / "deploy/chromium.sh")], capture_output=True,
                          text=True, timeout=900)  # fmt: skip
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def _browse(chromium: str, page: Path, *flags: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [chromium, "--headless", "--no-sandbox", "--hide-scrollbars", "--enable-logging=stderr",
         "--v=0", f"--window-size={WIDTH},{HEIGHT}", "--virtual-time-budget=8000", *flags,
         page.as_uri()],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip


def _drawn(chromium: str, page: Path) -> tuple[dict[str, str], list[str], str]:
    """The page's <body> data attributes once its scripts ran, the browser's console lines,
    and the error box's text."""
    done = _browse(chromium, page, "--dump-dom")
    assert done.returncode == 0, done.stderr[-2000:]
    body = re.search(r"<body([^>]*)>", done.stdout)
    assert body is not None
    attrs = dict(re.findall(r'data-([\w-]+)="([^"]*)"', body.group(1)))
    errors = re.search(r'<pre id="report-errors"[^>]*>(.*?)</pre>', done.stdout, re.S)
    console = [line for line in done.stderr.splitlines() if ":CONSOLE" in line]
    return attrs, console, errors.group(1) if errors else ""


@pytest.fixture(scope="module")
def pages(demo_dir: Path, airis_cli, tmp_path_factory: pytest.TempPathFactory) -> dict:
    out = tmp_path_factory.mktemp("reports")
    demo = airis_cli("report", "demo", "--data-dir", str(demo_dir), "--out", str(out / "demo.html"),
                     data_dir=demo_dir.parent)  # fmt: skip
    assert demo.returncode == 0, demo.stderr
    incident = re.search(r"\(id ([0-9a-f]{32})\)", (out / "demo.html").read_text()) or re.search(
        r'"id":"([0-9a-f]{32})"', (out / "demo.html").read_text()
    )
    assert incident is not None, "the demo stored no incident"
    one = airis_cli("report", "incident", incident.group(1), "--out", str(out / "one.html"),
                    data_dir=demo_dir)  # fmt: skip
    assert one.returncode == 0, one.stderr
    return {"demo": out / "demo.html", "incident": out / "one.html", "dir": out}


@pytest.mark.slow
@pytest.mark.parametrize("which", ["demo", "incident"])
def test_every_chart_of_the_page_draws_without_a_browser_error(chromium, pages, which):
    attrs, console, errors = _drawn(chromium, pages[which])
    assert attrs.get("drawn") == "yes", errors
    assert int(attrs["charts"]) >= 1 and attrs["inked"] == attrs["charts"]
    assert int(attrs["svgs"]) >= 5  # ranking bars, graph nodes, alert bars
    assert "errors" not in attrs and errors == "" and console == []


@pytest.mark.slow
def test_the_screenshot_is_a_picture_of_charts(chromium, pages):
    shot = pages["dir"] / "incident.png"
    done = _browse(chromium, pages["incident"], f"--screenshot={shot}")
    assert done.returncode == 0 and shot.exists(), done.stderr[-2000:]
    width, height, pixels = _rgb(shot.read_bytes())
    assert (width, height) == (WIDTH, HEIGHT)
    colours = {pixels[i : i + 3] for i in range(0, len(pixels), 3 * 7)}
    assert len(colours) > 200  # text, axes, lines and fills; a blank page has a handful
    assert any(r > 190 and g < 80 and b < 80 for r, g, b in colours)  # the red anomaly marks


def test_a_page_that_fails_to_draw_says_so(chromium, tmp_path):
    """The check above can fail: a view missing what the script needs is reported."""
    page = tmp_path / "broken.html"
    page.write_text(render_page("incident", {"incident": {"id": "x"}}, "broken"))
    attrs, _, errors = _drawn(chromium, page)
    assert attrs.get("drawn") != "yes" and int(attrs["errors"]) >= 1 and "Error" in errors


def test_data_cannot_close_the_script_element_it_is_in():
    page = render_page("incident", {"note": "</script><script>alert(1)</script>"}, "t")
    assert page.count("</script>") == 3  # the data, uPlot and the page's own script


def _rgb(png: bytes) -> tuple[int, int, bytes]:
    """Width, height and RGB bytes of an 8-bit RGB or RGBA, non-interlaced PNG (what Chromium
    writes)."""
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat, header = 8, b"", b""
    while pos < len(png):
        length, kind = struct.unpack(">I4s", png[pos : pos + 8])
        chunk = png[pos + 8 : pos + 8 + length]
        header = chunk if kind == b"IHDR" else header
        idat += chunk if kind == b"IDAT" else b""
        pos += 12 + length
    width, height, depth, colour, _, _, interlace = struct.unpack(">IIBBBBB", header)
    assert depth == 8 and colour in (2, 6) and interlace == 0
    channels = 3 if colour == 2 else 4
    raw, stride = zlib.decompress(idat), width * channels
    rows, prev = [], bytearray(stride)
    for y in range(height):
        kind, line = (
            raw[y * (stride + 1)],
            bytearray(raw[y * (stride + 1) + 1 : (y + 1) * (stride + 1)]),
        )
        for x in range(stride):
            a = line[x - channels] if x >= channels else 0
            b, c = prev[x], prev[x - channels] if x >= channels else 0
            if kind == 1:
                line[x] = (line[x] + a) & 255
            elif kind == 2:
                line[x] = (line[x] + b) & 255
            elif kind == 3:
                line[x] = (line[x] + (a + b) // 2) & 255
            elif kind == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[x] = (line[x] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
        rows.append(bytes(line))
        prev = line
    flat = b"".join(rows)
    if channels == 4:
        flat = b"".join(flat[i : i + 3] for i in range(0, len(flat), 4))
    return width, height, flat


def test_the_demo_writes_its_own_report(demo_dir):
    page = (demo_dir / "report.html").read_text()
    assert '<script id="report-data" type="application/json">{"kind":"demo"' in page
