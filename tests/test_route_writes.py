"""Every write into Traefik's watched directory is one event there: Traefik's file provider
reads and parses every file of the directory again on each event it sees, so a scratch
file created, written and renamed beside a route would make each route write cost it four
such reads. Watched with the kernel's inotify, as Traefik watches it."""

import uuid
from pathlib import Path

import pytest
import yaml

from activities.adapters.certificates import own_certificates_file, write_own_certificates
from activities.adapters.dynamic_yaml import dump_dynamic
from activities.adapters.hosts import Hosts
from activities.adapters.traefik import (
    Target,
    candidate_target,
    install_route,
    is_stopped,
    public_target,
    refresh_route,
    render_route,
    render_shared,
    restore_route,
    serve_shared,
    static_target,
    version_of,
    write_route,
)
from activities.adapters.upstreams import UpstreamError, read_upstream
from slipway.layout import Layout
from slipway.settings import Settings
from tests.inotify import watching

KEY = b"the server's secret key"


def route(project: str, slot: str) -> tuple[str, str]:
    hosts = Hosts(base=f"{project}.localhost", https_port=443)
    public = static_target("127.0.0.1", 8081, "current")
    return render_route(project, hosts, public, static_target("127.0.0.1", 8081, slot), KEY)


def test_each_route_write_is_one_rename_into_the_directory(tmp_path: Path) -> None:
    layout = Layout(tmp_path)
    layout.routes.mkdir(parents=True)
    project, first, second = "shop", str(uuid.uuid4()), str(uuid.uuid4())
    name = layout.route(project).name
    with watching(layout.routes) as watch:
        config, version = route(project, "next")
        assert write_route(layout, project, first, config, version).changed
        assert watch.events() == [("moved_to", name)], "a new route"

        config, version = route(project, "current")
        assert write_route(layout, project, second, config, version).changed
        assert watch.events() == [("moved_to", name)], "a changed route"

        assert not write_route(layout, project, second, config, version).changed
        assert watch.events() == [], "an unchanged route is not written"

        restore_route(layout, project, second)
        assert watch.events() == [("moved_to", name)], "the route put back"
        assert layout.route(project).read_text() == route(project, "next")[0]

        hosts = Hosts(base=f"{project}.example.org", https_port=443)
        refreshed = refresh_route(layout, project, hosts, KEY, write=True)
        assert refreshed is not None and refreshed.changed
        assert watch.events() == [("moved_to", name)], "a route rendered again"

        pair = [(str(tmp_path / "chain.pem"), str(tmp_path / "key.pem"))]
        assert write_own_certificates(layout, project, pair)
        own = own_certificates_file(layout, project)
        assert watch.events() == [("moved_to", own.name)], "a project's own certificates"
        assert own.stat().st_mode & 0o777 == 0o600
    assert sorted(p.name for p in layout.routes.iterdir()) == sorted([name, own.name])


def test_a_route_the_shared_route_serves_writes_nothing_traefik_reads(tmp_path: Path) -> None:
    """With the shared route in Traefik's directory, a project's route on its base name alone
    is kept beside it and carries the shared route's version; stopped (or given a custom
    domain), it has routers of its own there, which go again when it starts."""
    settings = Settings(home=tmp_path, secret_key=KEY.decode())
    layout = settings.layout
    serve_shared(settings)
    shared = version_of_shared(settings)
    hosts = Hosts(base="shop.localhost", https_port=443)
    public, candidate = (static_target("127.0.0.1", 8081, s) for s in ("current", "next"))
    deployment = str(uuid.uuid4())
    with watching(layout.routes) as watch:
        config, version = render_route("shop", hosts, public, candidate, KEY)
        assert version == shared
        assert write_route(layout, "shop", deployment, config, version).changed
        assert watch.events() == [], "served by the shared route"
        assert version_of(layout, "shop") == shared

        stopped, own = render_route("shop", hosts, public, candidate, KEY, stopped=True)
        assert own != shared
        install_route(layout, "shop", stopped)
        assert watch.events() == [("moved_to", "shop.yml")], "stopped: routers of its own"
        assert layout.served_route("shop").read_text() == stopped

        install_route(layout, "shop", config)
        assert watch.events() == [("delete", "shop.yml")], "started again"
        restore_route(layout, "shop", deployment)
    assert not layout.route("shop").exists() and not layout.served_route("shop").exists()


def test_a_route_served_before_records_is_adopted(tmp_path: Path) -> None:
    """A server upgraded with routes in Traefik's directory keeps them as its projects'
    routes, rendered again for the shared route: one on its base name alone leaves it."""
    settings = Settings(home=tmp_path, secret_key=KEY.decode())
    layout = settings.layout
    hosts = Hosts(base="shop.localhost", https_port=443)
    public, candidate = (static_target("127.0.0.1", 8081, s) for s in ("current", "next"))
    earlier, _ = render_route("shop", hosts, public, candidate, KEY)
    layout.served_route("shop").parent.mkdir(parents=True)
    layout.served_route("shop").write_text(earlier.replace("X-Slipway-Lane", "X-Old"))
    serve_shared(settings)
    assert not layout.served_route("shop").exists()
    assert layout.route("shop").read_text() == earlier
    assert version_of(layout, "shop") == version_of_shared(settings)
    assert candidate_target(layout, "shop") == candidate


def version_of_shared(settings: Settings) -> str:
    return render_shared(settings.base_domain, settings.static_url, KEY)[1]


def test_a_route_written_with_the_earlier_names_is_read_back_and_rendered_anew(
    tmp_path: Path,
) -> None:
    """Routes written before the candidate and stopped names took `_` (`-candidate`,
    `-stopped`) keep working until the project's route is rendered again."""
    layout = Layout(tmp_path)
    layout.route_records.mkdir(parents=True)
    hosts = Hosts(base="shop.localhost", https_port=443)
    public, candidate = (static_target("127.0.0.1", 8081, s) for s in ("current", "next"))
    config, _ = render_route("shop", hosts, public, candidate, KEY, stopped=True)
    earlier = config.replace("_candidate", "-candidate").replace("_stopped", "-stopped")
    assert earlier != config
    layout.route("shop").write_text(earlier)
    assert candidate_target(layout, "shop") == candidate
    assert is_stopped(layout, "shop")
    refreshed = refresh_route(layout, "shop", hosts, KEY, write=True)
    assert refreshed is not None and refreshed.changed
    assert layout.route("shop").read_text() == config


def test_an_app_route_names_the_static_server_and_not_the_container(tmp_path: Path) -> None:
    """An app's route sends requests to the static server with the slot it proxies: the
    containers of two deployments render the same route, and each slot's container is read
    back from its upstream file. A route written when an app's routers went to its container
    itself reads back as it was written."""
    layout = Layout(tmp_path)
    layout.route_records.mkdir(parents=True)
    hosts = Hosts(base="shop.localhost", https_port=443)
    via = "http://127.0.0.1:8081"

    def targets(port: int) -> tuple[Target, Target]:
        url = f"http://127.0.0.1:{port}"
        return Target(url=url, via=via, lane="current"), Target(url=url, via=via, lane="next")

    config, version = render_route("shop", hosts, *targets(20001), KEY)
    assert render_route("shop", hosts, *targets(20002), KEY) == (config, version)
    assert "20001" not in config
    layout.route("shop").write_text(config)
    upstream = layout.upstream("shop", "current")
    upstream.parent.mkdir(parents=True)
    upstream.write_text("127.0.0.1:20002")
    assert public_target(layout, "shop") == targets(20002)[0]
    assert candidate_target(layout, "shop") == Target(url="", via=via, lane="next")

    direct = Target(url="http://127.0.0.1:20001")
    earlier, _ = render_route("shop", hosts, direct, direct, KEY)
    layout.route("shop").write_text(earlier)
    assert public_target(layout, "shop") == direct
    assert candidate_target(layout, "shop") == direct


def test_an_upstream_file_that_is_a_link_is_refused(tmp_path: Path) -> None:
    """The static server proxies to whatever an upstream file names: one that is a link is
    not Slipway's, and is neither read nor followed."""
    layout = Layout(tmp_path)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.write_text("10.0.0.1:22")
    upstream = layout.upstream("shop", "next")
    upstream.parent.mkdir(parents=True)
    assert read_upstream(layout, "shop", "next") is None
    upstream.symlink_to(elsewhere)
    with pytest.raises(UpstreamError):
        read_upstream(layout, "shop", "next")


def test_strings_that_look_like_numbers_reach_traefik_as_written(tmp_path: Path) -> None:
    """Traefik reads a bare 0973790466535201 or 12e45 as a number (a route version of that
    shape once never matched the one Slipway wrote): every string is written quoted."""
    for value in ("0973790466535201", "12e45", "1234", "true", "null"):
        text = dump_dynamic({"http": {"middlewares": {"m": {"headers": {"X-V": value}}}}})
        assert f'"X-V": "{value}"' in text, text
        assert yaml.safe_load(text)["http"]["middlewares"]["m"]["headers"]["X-V"] == value
    config, _ = route("shop", "next")
    assert all(line.rstrip().endswith(('"', ":")) or "- " in line for line in config.splitlines())
