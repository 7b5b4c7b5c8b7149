"""Static sites served as their users expect, through real Traefik and Caddy: `[static]` in
slipway.toml (SPA fallback, redirects, headers, compression), a custom 404 page, cache
headers for fingerprinted assets and HTML, hostile rules refused, and each release served
under its own rules, a rollback included."""

import gzip
import json
import re
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa
from temporalio.client import Client

from activities.adapters.releases import point
from activities.adapters.traefik import candidate_token
from slipway.layout import Layout
from slipway.secrets import load_key
from slipway.settings import Settings
from slipway.static_rules import RULES_DIR, StaticRules, rules_path
from slipway.static_server import (
    FINGERPRINTED,
    IMMUTABLE,
    REVALIDATE,
    lane_token,
    site_routes,
)
from starter import api
from tests.helpers import deploy_and_wait, fetch, outcome, row
from tests.running import RunningWorker

PAGE = "<!doctype html><title>{text}</title><h1>{text}</h1>" + "<p>padding</p>" * 100
"""Long enough for compression (Caddy leaves bodies under 512 bytes as they are)."""


def site(root: Path, text: str, toml: str | None = None, **files: str) -> Path:
    """A static site whose index.html says `text`, with its slipway.toml and more files
    (names with `__` for `/`)."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "index.html").write_text(PAGE.format(text=text))
    if toml is not None:
        (root / "slipway.toml").write_text(toml)
    for name, content in files.items():
        path = root / name.replace("__", "/")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content)
    return root


def get(
    settings: Settings, project: str, path: str, *, port: int = 0, **headers: str
) -> httpx.Response:
    """GET through Traefik (its public entry point unless `port` names another) with the
    project's Host, no redirect followed, asking for no compression unless `headers` do."""
    return httpx.get(
        f"http://127.0.0.1:{port or settings.http_port}{path}",
        headers={"Host": settings.project_host(project), "Accept-Encoding": "identity"}
        | {k.replace("_", "-"): v for k, v in headers.items()},
        timeout=5.0,
    )


def sent(settings: Settings, project: str, encoding: str) -> tuple[httpx.Headers, bytes]:
    """The home page's headers and its body as it came over the wire (not decoded)."""
    url = f"http://127.0.0.1:{settings.http_port}/"
    headers = {"Host": settings.project_host(project), "Accept-Encoding": encoding}
    with httpx.stream("GET", url, headers=headers, timeout=5.0) as answer:
        return answer.headers, b"".join(answer.iter_raw())


SPA = """
[static]
spa = true

[[static.redirects]]
from = "/old"
to = "/new"

[[static.redirects]]
from = "/blog/*"
to = "/news/:splat"
status = 302

[[static.redirects]]
from = "/away"
to = "https://example.org/there"
status = 308

[static.headers."/*"]
X-Frame-Options = "DENY"

[static.headers."/assets/*"]
Access-Control-Allow-Origin = "*"
X-Frame-Options = "SAMEORIGIN"
"""

SCRIPT = "console.log('fingerprinted');\n" * 40


async def test_a_single_page_app_with_redirects_headers_and_cache_headers(
    client: Client, settings: Settings, worker: RunningWorker, project: str, tmp_path: Path
) -> None:
    files = {"assets__app.3f9a1c2b.js": SCRIPT, "assets__bootstrap.min.js": SCRIPT}
    path = site(tmp_path / "spa", "spa home", SPA, **files)
    _, failure = await deploy_and_wait(client, settings, path, project)
    assert failure is None

    for unknown in ("/dashboard", "/users/42/settings"):
        answer = get(settings, project, unknown)
        assert answer.status_code == 200, unknown
        assert "spa home" in answer.text
        assert answer.headers["cache-control"] == REVALIDATE

    moved = get(settings, project, "/old")
    assert (moved.status_code, moved.headers["location"]) == (301, "/new")
    splat = get(settings, project, "/blog/2024/hello")
    assert (splat.status_code, splat.headers["location"]) == (302, "/news/2024/hello")
    away = get(settings, project, "/away")
    assert (away.status_code, away.headers["location"]) == (308, "https://example.org/there")

    home = get(settings, project, "/")
    assert home.headers["x-frame-options"] == "DENY"
    assert "access-control-allow-origin" not in home.headers
    assert home.headers["cache-control"] == REVALIDATE

    asset = get(settings, project, "/assets/app.3f9a1c2b.js")
    assert asset.status_code == 200 and asset.text == SCRIPT
    assert asset.headers["cache-control"] == IMMUTABLE
    assert asset.headers["access-control-allow-origin"] == "*"
    assert asset.headers["x-frame-options"] == "SAMEORIGIN", "the later pattern wins"
    plain = get(settings, project, "/assets/bootstrap.min.js")
    assert plain.status_code == 200 and "cache-control" not in plain.headers
    missing = get(settings, project, "/assets/gone.4d5e6f7a.js")
    assert missing.status_code == 200 and "spa home" in missing.text
    assert missing.headers["cache-control"] == REVALIDATE, "a fallback page is never immutable"


async def test_defaults_a_404_page_and_compression_negotiated(
    client: Client, settings: Settings, worker: RunningWorker, project: str, tmp_path: Path
) -> None:
    path = site(tmp_path / "plain", "plain home", None, **{"404.html": "<h1>no such page</h1>"})
    _, failure = await deploy_and_wait(client, settings, path, project)
    assert failure is None

    lost = get(settings, project, "/nowhere")
    assert lost.status_code == 404
    assert "no such page" in lost.text
    assert lost.headers["cache-control"] == REVALIDATE
    assert "plain home" in get(settings, project, "/").text
    shouted = httpx.get(
        f"http://127.0.0.1:{settings.http_port}/",
        headers={"Host": settings.project_host(project).upper()},
        timeout=5.0,
    )
    assert "plain home" in shouted.text, "a name in capitals is the same name"

    headers, body = sent(settings, project, "gzip")
    assert headers["content-encoding"] == "gzip"
    assert "plain home" in gzip.decompress(body).decode()
    assert "accept-encoding" in headers["vary"].lower()
    headers, body = sent(settings, project, "zstd")
    assert headers["content-encoding"] == "zstd"
    assert body[:4] == b"\x28\xb5\x2f\xfd", "a zstd frame"
    headers, _ = sent(settings, project, "gzip, zstd")
    assert headers["content-encoding"] == "zstd", "zstd preferred"
    identity = get(settings, project, "/")
    assert "content-encoding" not in identity.headers and "plain home" in identity.text

    off = site(tmp_path / "off", "uncompressed", "[static]\ncompress = false\n")
    _, failure = await deploy_and_wait(client, settings, off, project)
    assert failure is None
    answer = get(settings, project, "/", Accept_Encoding="gzip, zstd")
    assert "content-encoding" not in answer.headers
    assert "uncompressed" in answer.text
    assert get(settings, project, "/nowhere").status_code == 404, "no 404.html: Caddy's own"


HOSTILE = [
    (
        '[static.headers."/*"]\nX-Leak = "{file./etc/passwd}"\n',
        "static.headers",
        "without braces",
    ),
    (
        '[[static.redirects]]\nfrom = "/a"\nto = "/b\\"\\n}\\nimport /etc/caddy"\n',
        "static.redirects.0.to",
        "not a redirect target",
    ),
    (
        '[[static.redirects]]\nfrom = "/../../etc/*"\nto = "/x/:splat"\n',
        "static.redirects.0.from",
        "'..'",
    ),
    (
        '[[static.redirects]]\nfrom = "/a"\nto = "/b"\nstatus = 200\n',
        "static.redirects.0.status",
        "",
    ),
    ('[static.headers."/*"]\n"Bad Name:" = "x"\n', "static.headers", "not a header name"),
    ('[static.headers."/*"]\nContent-Length = "0"\n', "static.headers", "cannot be set"),
    ('[static]\nspa = "yes"\n', "static.spa", ""),
    ("[static]\nrewrite = true\n", "static.rewrite", "unknown setting"),
]


@pytest.mark.parametrize(("toml", "key", "reason"), HOSTILE)
async def test_hostile_static_rules_are_refused_naming_the_key(
    client: Client,
    settings: Settings,
    engine: sa.Engine,
    worker: RunningWorker,
    project: str,
    tmp_path: Path,
    toml: str,
    key: str,
    reason: str,
) -> None:
    good = site(tmp_path / "good", "still serving")
    _, failure = await deploy_and_wait(client, settings, good, project)
    assert failure is None
    bad = site(tmp_path / "bad", "hostile", toml)
    deployment_id, failure = await deploy_and_wait(client, settings, bad, project)
    assert failure is not None
    assert f"slipway.toml: {key}" in failure and reason in failure
    view = row(engine, deployment_id)
    assert view.metadata["failedPhase"] == "building"
    assert "still serving" in fetch(settings, project).text


async def test_a_site_that_redirects_every_path_still_proves_itself(
    client: Client, settings: Settings, worker: RunningWorker, project: str, tmp_path: Path
) -> None:
    """The health check reads Slipway's own path, which no rule reaches."""
    toml = '[[static.redirects]]\nfrom = "/*"\nto = "https://moved.example/:splat"\n'
    _, failure = await deploy_and_wait(
        client, settings, site(tmp_path / "moved", "x", toml), project
    )
    assert failure is None
    answer = get(settings, project, "/any/page")
    assert (answer.status_code, answer.headers["location"]) == (
        301,
        "https://moved.example/any/page",
    )


async def test_rules_planted_by_an_upload_are_not_rules(
    client: Client, settings: Settings, worker: RunningWorker, project: str, tmp_path: Path
) -> None:
    """Slipway's own path in an upload is left out, so an upload cannot hand the static
    server rules that slipway.toml did not validate."""
    planted = StaticRules(spa=True)
    name = rules_path(planted).replace("/", "__")
    path = site(tmp_path / "planted", "planted", None, **{name: planted.serialized()})
    deployment_id, failure = await deploy_and_wait(client, settings, path, project)
    assert failure is None
    assert not (Layout(settings.home).release(project, deployment_id) / RULES_DIR).exists()
    assert get(settings, project, "/anything").status_code == 404


async def test_each_release_is_served_under_its_own_rules_a_rollback_included(
    client: Client,
    settings: Settings,
    engine: sa.Engine,
    worker: RunningWorker,
    project: str,
    tmp_path: Path,
) -> None:
    one = site(
        tmp_path / "one",
        "release one",
        '[[static.redirects]]\nfrom = "/go"\nto = "/one"\n'
        '[static.headers."/*"]\nX-Release = "one"\n',
    )
    two = site(
        tmp_path / "two",
        "release two",
        '[static]\nspa = true\n[[static.redirects]]\nfrom = "/go"\nto = "/two"\n'
        '[static.headers."/*"]\nX-Release = "two"\n',
    )
    first, failure = await deploy_and_wait(client, settings, one, project)
    assert failure is None
    assert get(settings, project, "/go").headers["location"] == "/one"
    second, failure = await deploy_and_wait(client, settings, two, project)
    assert failure is None
    assert get(settings, project, "/go").headers["location"] == "/two"
    assert get(settings, project, "/").headers["x-release"] == "two"
    assert get(settings, project, "/deep/link").status_code == 200

    layout = Layout(settings.home)
    point(layout, project, layout.candidate(project), first, ".next-by-hand")
    token = candidate_token(load_key(settings))
    staged = get(settings, project, "/go", port=settings.candidate_port, X_Slipway_Candidate=token)
    assert staged.headers["location"] == "/one", "the candidate follows `next` and its rules"
    unseen = get(settings, project, "/go", X_Slipway_Candidate=token)
    assert unseen.headers["location"] == "/two", "no candidate on the public entry point"
    lane = lane_token(load_key(settings), "next")
    named = get(settings, project, "/go", X_Slipway_Lane=lane, X_Slipway_Slot="next")
    assert named.headers["location"] == "/two", "a visitor's slot headers are replaced"
    assert get(settings, project, "/go").headers["location"] == "/two", "the public, `current`"

    back = await api.rollback(client, settings, engine, project)
    assert await outcome(client, back) is None
    assert row(engine, back).metadata["release"] == first
    assert get(settings, project, "/go").headers["location"] == "/one"
    home = get(settings, project, "/")
    assert home.headers["x-release"] == "one" and "release one" in home.text
    assert get(settings, project, "/deep/link").status_code == 404, "no SPA in release one"

    forward = await api.rollback(client, settings, engine, project, to=second)
    assert await outcome(client, forward) is None
    assert get(settings, project, "/go").headers["location"] == "/two"
    assert get(settings, project, "/deep/link").status_code == 200


@pytest.mark.parametrize(
    ("path", "fingerprinted"),
    [
        ("/assets/app.3f9a1c2b.js", True),
        ("/assets/index-BxT9kq2L.css", True),
        ("/chunk.a1b2c3d4e5f6.min.js", True),
        ("/assets/bootstrap.min.js", False),
        ("/assets/jquery-latest.js", False),
        ("/app.3f9a1c2b/readme.txt", False),
        ("/index.html", False),
    ],
)
def test_what_counts_as_fingerprinted(path: str, fingerprinted: bool) -> None:
    assert bool(re.search(FINGERPRINTED, path)) is fingerprinted


def test_rules_reach_caddy_only_as_literal_values(tmp_path: Path) -> None:
    """Every brace in the configuration is one of Slipway's own placeholders: the rules'
    values arrive as they were written, in fields of their own."""
    rules = StaticRules.model_validate(
        {
            "redirects": [{"from": "/a/*", "to": "https://x.example/b/:splat?q=1#f"}],
            "headers": {"*.css": {"X-Note": "quote \" and 'both' \\ back"}},
        }
    )
    text = json.dumps(site_routes(rules))
    placeholders = set(re.findall(r"\{[a-z][^{}]*\}", text))
    assert placeholders <= {
        "{http.request.uri.path}",
        "{http.matchers.file.relative}",
        "{http.regexp.redirect0.1}",
    }
    assert "https://x.example/b/{http.regexp.redirect0.1}?q=1#f" in text
    with pytest.raises(ValueError, match="without braces"):
        StaticRules.model_validate({"headers": {"/*": {"X-A": "{env.SLIPWAY_SECRET_KEY}"}}})
    with pytest.raises(ValueError, match="not a redirect target"):
        StaticRules.model_validate({"redirects": [{"from": "/a", "to": "/{env.HOME}"}]})
    with pytest.raises(ValueError, match="another site"):
        StaticRules.model_validate({"redirects": [{"from": "/a/*", "to": "/:splat"}]})
