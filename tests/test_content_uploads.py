"""Content-addressed uploads: a manifest, then only the contents the server lacks. Every
hostile manifest is refused by the API with nothing written, and again by pulling_source
when one reaches the upload store another way; the client's hash cache reads only what
changed; cleanup removes only old blobs no kept manifest names."""

import hashlib
import json
import os
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa
from pydantic import SecretStr
from temporalio.client import Client

from activities.adapters.beat import Beat
from activities.adapters.blobs import BLOBS, blob_path
from activities.adapters.content_manifest import FORMAT, Item, as_json, canonical
from activities.adapters.manifest import Entry, load, save, scan
from activities.phases.copying_files import copy_release
from activities.phases.pulling_source import pull
from activities.upkeep.cleanup import Records, clean
from slipway.errors import BadInputError
from slipway.layout import RELEASE_MARKER, Layout
from slipway.limits import UnpackLimits
from slipway.models import ReconcileInput
from slipway.settings import Settings
from starter.http.app import create_app
from starter.http.config import ApiSettings
from starter.tree import Sent, cache_file, changes, describe, remember
from tests.test_http_api import AUTH, TOKEN

HELLO = b"hello"
DIGEST = hashlib.sha256(HELLO).hexdigest()
SCRIPT = b"#!/bin/sh\necho hi\n"
SCRIPT_DIGEST = hashlib.sha256(SCRIPT).hexdigest()
ABSENT = hashlib.sha256(b"never uploaded").hexdigest()
LIMITS = UnpackLimits(min_free_bytes=0)


def file(
    path: str, digest: str = DIGEST, size: int = len(HELLO), mode: int = 0o644
) -> dict[str, object]:
    return {"path": path, "kind": "file", "size": size, "mode": mode, "sha256": digest}


def link(path: str, target: str) -> dict[str, object]:
    return {"path": path, "kind": "link", "target": target}


def directory(path: str) -> dict[str, object]:
    return {"path": path, "kind": "dir"}


HOSTILE: dict[str, tuple[list[dict[str, object]], str]] = {
    "climbs with ..": ([file("a/../../outside")], "climbs out"),
    "absolute path": ([file("/tmp/slipway-outside")], "absolute path"),
    "control character": ([file("a\x01b")], "control character"),
    "backslash": ([file("a\\..\\b")], "backslash"),
    "not canonical": ([file("a//b")], "not canonical"),
    "duplicate": ([file("index.html"), file("index.html")], "appears twice"),
    "under a file": ([file("index.html"), file("index.html/x")], "lies under 'index.html'"),
    "under a link": ([directory("d"), link("l", "d"), file("l/x")], "lies under 'l'"),
    "link leaves": ([file("index.html"), link("l", "../outside")], "leads outside"),
    "absolute link": ([file("index.html"), link("l", "/etc/passwd")], "absolute path"),
    "late escape": (
        [link("x", "s/s/../.."), link("s", "."), file("index.html")],
        "leads outside",
    ),
    "sizes disagree": ([file("a.html"), file("b.html", size=6)], "another entry says"),
    "size lies": ([file("index.html", size=6)], "has 5"),
}
"""Manifests no server may build, with what the refusal says (by the API or, stored, by
pulling_source)."""


def stored(entries: list[dict[str, object]]) -> bytes:
    """Entries as a stored manifest, as if written into the store by some other road."""
    return json.dumps({"format": FORMAT, "entries": entries}, separators=(",", ":")).encode()


def listing(root: Path) -> set[str]:
    """Every path under `root`, to tell whether anything was written."""
    return {p.relative_to(root).as_posix() for p in root.rglob("*")} if root.exists() else set()


@pytest.fixture
def own_store(settings: Settings, tmp_path: Path) -> Settings:
    """The session's settings with an upload store of this test's own."""
    return settings.model_copy(update={"upload_store": tmp_path / "uploads"})


@pytest.fixture
async def api(
    own_store: Settings, client: Client, engine: sa.Engine
) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(own_store, ApiSettings(token=SecretStr(TOKEN)), client=client, engine=engine)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(
        transport=transport, base_url="http://api.test", headers=AUTH, timeout=60
    ) as http:
        yield http


async def test_every_hostile_manifest_is_refused_with_422_and_nothing_is_written(
    api: httpx.AsyncClient, own_store: Settings, project: str
) -> None:
    uploads = own_store.layout.uploads
    put = await api.put(f"/api/blobs/{DIGEST}", content=HELLO)
    assert put.status_code == 204, put.text
    before = listing(uploads)
    for case, (entries, _) in HOSTILE.items():
        answer = await api.post("/api/uploads", json={"entries": entries})
        assert answer.status_code == 422, (case, answer.text)
        assert listing(uploads) == before, case

    # Content that does not hash to its name is refused while it streams, and not kept.
    wrong = await api.put(f"/api/blobs/{ABSENT}", content=b"something else")
    assert wrong.status_code == 422 and wrong.json()["detail"].startswith("blob: ")
    assert listing(uploads) == before

    # A manifest whose content never arrived is stored, but not deployed.
    answer = await api.post("/api/uploads", json={"entries": [file("index.html", ABSENT, 14)]})
    assert answer.status_code == 200 and answer.json()["missing"] == [ABSENT]
    deploy = {"project": project, "uploadId": answer.json()["uploadId"]}
    refused = await api.post("/api/deployments", json=deploy)
    assert refused.status_code == 422, refused.text
    assert "are not stored" in refused.json()["detail"]

    # A blob that arrives with another size than its manifest gave is refused at deployment.
    lying = hashlib.sha256(b"seven b").hexdigest()
    answer = await api.post("/api/uploads", json={"entries": [file("index.html", lying, 8)]})
    assert (await api.put(f"/api/blobs/{lying}", content=b"seven b")).status_code == 204
    refused = await api.post(
        "/api/deployments", json={"project": project, "uploadId": answer.json()["uploadId"]}
    )
    assert refused.status_code == 422 and "has 7" in refused.json()["detail"]

    unknown = {"project": project, "uploadId": "0" * 64}
    assert (await api.post("/api/deployments", json=unknown)).status_code == 404


async def test_a_manifest_answers_what_is_missing_and_is_stored_once(
    api: httpx.AsyncClient, own_store: Settings
) -> None:
    entries = [file("index.html"), file("copy.html"), file("bin/run", SCRIPT_DIGEST, len(SCRIPT))]
    first = (await api.post("/api/uploads", json={"entries": entries})).json()
    assert sorted(first["missing"]) == sorted({DIGEST, SCRIPT_DIGEST})
    assert (await api.put(f"/api/blobs/{DIGEST}", content=HELLO)).status_code == 204
    again = (await api.post("/api/uploads", json={"entries": list(reversed(entries))})).json()
    assert again == {"uploadId": first["uploadId"], "missing": [SCRIPT_DIGEST]}
    manifest = own_store.layout.upload(first["uploadId"])
    assert hashlib.sha256(manifest.read_bytes()).hexdigest() == first["uploadId"]
    assert blob_path(own_store.layout.uploads, DIGEST).read_bytes() == HELLO


async def test_an_upload_described_as_changes_is_the_upload_of_the_whole_tree(
    api: httpx.AsyncClient, own_store: Settings, client: Client, engine: sa.Engine
) -> None:
    uploads = own_store.layout.uploads
    assert (await api.put(f"/api/blobs/{DIGEST}", content=HELLO)).status_code == 204
    entries = [directory("d"), file("d/a.html"), file("index.html"), link("l", "index.html")]
    base = (await api.post("/api/uploads", json={"entries": entries})).json()["uploadId"]
    script = file("bin/run", SCRIPT_DIGEST, len(SCRIPT), 0o755)
    whole = [file("d/a.html"), file("index.html"), script, link("l", "d/a.html")]
    change = {"entries": [script, link("l", "d/a.html")], "removed": ["d"]}

    answer = await api.post(f"/api/uploads/{base}/changes", json=change)
    assert answer.status_code == 200, answer.text
    assert answer.json()["missing"] == [SCRIPT_DIGEST]
    expected = (await api.post("/api/uploads", json={"entries": whole})).json()["uploadId"]
    assert answer.json()["uploadId"] == expected

    # Changes that make a tree no server may build are refused, and nothing is written.
    before = listing(uploads)
    refused = {
        "removes what is not there": {"entries": [], "removed": ["nothing.html"]},
        "climbs with ..": {"entries": [file("a/../../outside")]},
        "under a file": {"entries": [file("index.html/x")]},
        "link leaves": {"entries": [link("l", "../outside")]},
        "twice": {"entries": [file("x.html"), file("x.html")]},
        "size lies": {"entries": [file("y.html", size=6)]},
    }
    for case, body in refused.items():
        answer = await api.post(f"/api/uploads/{base}/changes", json=body)
        assert answer.status_code == 422, (case, answer.text)
        assert listing(uploads) == before, case
    absent = await api.post(f"/api/uploads/{ABSENT}/changes", json={"entries": []})
    assert absent.status_code == 404, absent.text

    # Another process, which never saw the base, checks it from the store whole.
    other = create_app(own_store, ApiSettings(token=SecretStr(TOKEN)), client=client, engine=engine)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=other), base_url="http://api.test", headers=AUTH
    ) as fresh:
        answer = await fresh.post(f"/api/uploads/{base}/changes", json=change)
        assert answer.status_code == 200 and answer.json()["uploadId"] == expected
        own_store.layout.upload(base).write_bytes(stored([file("index.html", size=6)]))
        answer = await fresh.post("/api/uploads/" + base + "/changes", json={"entries": []})
        assert answer.status_code == 422 and "has 5" in answer.json()["detail"]


def _store(layout: Layout, entries: list[dict[str, object]], blobs: dict[str, bytes]) -> str:
    """Write a manifest and blobs straight into the upload store; return the upload id."""
    data = stored(entries)
    upload_id = hashlib.sha256(data).hexdigest()
    layout.uploads.mkdir(parents=True, exist_ok=True)
    layout.upload(upload_id).write_bytes(data)
    for digest, content in blobs.items():
        path = blob_path(layout.uploads, digest)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)
    return upload_id


def test_pulling_source_refuses_hostile_manifests_that_reach_the_store_another_way(
    tmp_path: Path,
) -> None:
    layout = Layout(tmp_path / "home")
    cases = {
        **HOSTILE,
        "missing blob": ([file("index.html", ABSENT, 14)], "not in the blob store"),
        "wrong content": ([file("index.html", ABSENT, 5)], "hashes to"),
        "not a manifest": ([{"path": "x", "kind": "socket"}], "only file, dir and link"),
    }
    for case, (entries, reason) in cases.items():
        blobs = {DIGEST: HELLO}
        if case == "wrong content":
            blobs[ABSENT] = HELLO
        upload_id = _store(layout, entries, blobs)
        deployment_id = str(uuid.uuid4())
        with pytest.raises(BadInputError, match="was refused") as refused:
            pull(layout, upload_id, deployment_id, LIMITS, Beat())
        assert reason in str(refused.value), (case, str(refused.value))
        assert not layout.work(deployment_id).exists(), case
        assert not layout.upload(upload_id).exists(), case
    assert not Path("/tmp/slipway-outside").exists()

    # A blob planted as a link is not followed.
    upload_id = _store(layout, [file("index.html")], {})
    planted = blob_path(layout.uploads, DIGEST)
    planted.unlink()
    planted.symlink_to("/etc/hostname")
    with pytest.raises(BadInputError, match="its blob is a link"):
        pull(layout, upload_id, str(uuid.uuid4()), LIMITS, Beat())


def test_a_manifest_builds_its_tree_from_hard_links_and_makes_links_last(
    tmp_path: Path,
) -> None:
    layout = Layout(tmp_path / "home")
    entries = [
        file("index.html"),
        file("assets/again.html"),
        file("bin/run", SCRIPT_DIGEST, len(SCRIPT), 0o755),
        directory("empty"),
        link("home.html", "index.html"),
    ]
    upload_id = _store(layout, entries, {DIGEST: HELLO, SCRIPT_DIGEST: SCRIPT})
    deployment_id = str(uuid.uuid4())
    result = pull(layout, upload_id, deployment_id, LIMITS, Beat())
    source = layout.source(deployment_id)
    stored = _stored(layout, DIGEST)
    # The blob was copied once, verified, into the server's content store; both files are
    # links to that copy, none to the upload store's blob.
    assert (source / "index.html").stat().st_ino == stored.stat().st_ino
    assert (source / "assets" / "again.html").stat().st_ino == stored.stat().st_ino
    assert stored.stat().st_ino != blob_path(layout.uploads, DIGEST).stat().st_ino
    assert stored.read_bytes() == HELLO
    assert (source / "bin" / "run").read_bytes() == SCRIPT
    assert (source / "bin" / "run").stat().st_mode & 0o777 == 0o755
    assert (source / "empty").is_dir()
    assert os.readlink(source / "home.html") == "index.html"
    assert result.files == 3 and result.bytes == 2 * len(HELLO) + len(SCRIPT)
    # The manifest kept for copying is the one a scan of the tree makes.
    assert load(layout.manifest(deployment_id)) == scan(source, Beat())


def _stored(layout: Layout, digest: str) -> Path:
    return layout.store / digest[:2] / digest[2:]


def test_a_content_the_store_holds_is_linked_not_read_from_its_blob_again(
    tmp_path: Path,
) -> None:
    layout = Layout(tmp_path / "home")
    upload_id = _store(layout, [file("index.html")], {DIGEST: HELLO})
    pull(layout, upload_id, str(uuid.uuid4()), LIMITS, Beat())
    # The blob goes bad afterwards: a tree that holds its content is built from the store,
    # which holds only what this server hashed itself, so the bad bytes never reach it.
    blob_path(layout.uploads, DIGEST).write_bytes(b"HELLO")
    again = str(uuid.uuid4())
    pull(layout, upload_id, again, LIMITS, Beat())
    assert (layout.source(again) / "index.html").read_bytes() == HELLO

    # A manifest that lies about the size of a stored content is refused all the same.
    lying = _store(layout, [file("index.html", size=6)], {})
    with pytest.raises(BadInputError, match="has 5"):
        pull(layout, lying, str(uuid.uuid4()), LIMITS, Beat())


def test_releases_stay_as_they_were_built_whatever_deploys_after_them(tmp_path: Path) -> None:
    """A release's files are hard links into the content store: each stored object is
    created new and whole and never opened for writing afterwards, so a later deployment,
    whatever its content, gives a changed file a new inode and leaves every earlier
    release's bytes and inodes as they were; and no release file is the upload store's,
    which other servers may write."""
    layout = Layout(tmp_path / "home")
    contents = {name: f"<p>{name}</p>".encode() for name in ("index.html", "a.css", "b.js")}

    def deploy(changed: bytes | None) -> Path:
        files = dict(contents, **({"index.html": changed} if changed else {}))
        digests = {name: hashlib.sha256(data).hexdigest() for name, data in files.items()}
        entries = [file(name, digests[name], len(data)) for name, data in files.items()]
        upload_id = _store(layout, entries, {digests[n]: data for n, data in files.items()})
        deployment_id = str(uuid.uuid4())
        pull(layout, upload_id, deployment_id, LIMITS, Beat())
        return _copy(layout, deployment_id)

    def seen(release: Path) -> dict[str, tuple[int, bytes]]:
        return {n: ((release / n).stat().st_ino, (release / n).read_bytes()) for n in contents}

    first = deploy(None)
    before = seen(first)
    second = deploy(b"<p>changed</p>")
    assert seen(first) == before
    assert (second / "index.html").read_bytes() == b"<p>changed</p>"
    assert (second / "index.html").stat().st_ino != before["index.html"][0]
    assert (second / "a.css").stat().st_ino == before["a.css"][0], "unchanged: a link"
    blobs = {p.stat().st_ino for p in (layout.uploads / BLOBS).rglob("*") if p.is_file()}
    for release in (first, second):
        assert not {(release / n).stat().st_ino for n in contents} & blobs


def _copy(layout: Layout, deployment_id: str) -> Path:
    """copy_release of the deployment's source, its site root at the top; the release."""
    copy_release(
        layout,
        "site",
        deployment_id,
        layout.source(deployment_id),
        load(layout.manifest(deployment_id)),
        "",
        Beat(),
        lambda copied, total: None,
        LIMITS,
    )
    return layout.release("site", deployment_id)


def test_a_tree_of_stored_links_becomes_its_release_by_one_rename(tmp_path: Path) -> None:
    layout = Layout(tmp_path / "home")
    entries = [file("index.html"), file("assets/copy.html"), directory("empty")]
    upload_id = _store(layout, entries, {DIGEST: HELLO})
    moved = str(uuid.uuid4())
    pull(layout, upload_id, moved, LIMITS, Beat())
    source = layout.source(moved)
    inode = source.stat().st_ino
    release = _copy(layout, moved)
    assert not source.exists() and release.stat().st_ino == inode
    assert (release / "index.html").stat().st_ino == _stored(layout, DIGEST).stat().st_ino
    assert (release / "empty").is_dir()
    assert (release / RELEASE_MARKER).read_text() == moved

    # A retry after the move, before the copy was recorded, finds the source gone and
    # links every file again, over itself, from the store.
    (layout.work(moved) / "copy.json").unlink()
    (release / RELEASE_MARKER).unlink()
    assert _copy(layout, moved) == release
    assert (release / RELEASE_MARKER).read_text() == moved
    assert (release / "assets" / "copy.html").read_bytes() == HELLO

    # A tree with an executable, a link, an entry at Slipway's reserved path, or anything
    # put at its top since it was built, is released entry by entry and stays where it is.
    cases: dict[str, list[dict[str, object]]] = {
        "executable": [file("index.html"), file("run", SCRIPT_DIGEST, len(SCRIPT), 0o755)],
        "link": [file("index.html"), link("home.html", "index.html")],
        "changed since": [file("index.html")],
        "reserved path": [file("index.html"), file(".well-known/slipway/planted.html")],
    }
    for case, listed in cases.items():
        upload_id = _store(layout, listed, {DIGEST: HELLO, SCRIPT_DIGEST: SCRIPT})
        deployment_id = str(uuid.uuid4())
        pull(layout, upload_id, deployment_id, LIMITS, Beat())
        if case == "changed since":
            (layout.source(deployment_id) / "planted.html").write_text("not in the manifest")
        release = _copy(layout, deployment_id)
        assert layout.source(deployment_id).is_dir(), case
        assert (release / "index.html").read_bytes() == HELLO, case
        assert not (release / "planted.html").exists(), case
        assert not (release / ".well-known" / "slipway" / "planted.html").exists(), case
        assert not any(p.is_symlink() for p in release.rglob("*")), case


def test_the_canonical_manifest_is_its_entries_as_compact_json_sorted_by_path() -> None:
    items = [
        Item('z/é "quoted"\u2028.html', "file", 12, 0o100755, "a" * 64),
        Item("a", "dir"),
        Item("a/link", "link", target='../z/é "quoted"\u2028.html'),
        Item("a/b.txt", "file", 0, 0o644, "b" * 64),
        Item("😀", "file", 2**40, 0o600, "c" * 64),
    ]
    entries = [as_json(item) for item in sorted(items, key=lambda item: item.path)]
    document = {"format": FORMAT, "entries": entries}
    assert canonical(items) == json.dumps(document, separators=(",", ":")).encode()
    assert canonical([]) == json.dumps({"format": FORMAT, "entries": []}).replace(" ", "").encode()


def test_a_sources_manifest_is_its_entries_as_compact_json(tmp_path: Path) -> None:
    entries = [
        Entry("a", "dir"),
        Entry('a/é "q"\u2028', "file", "d" * 64, 2**40),
        Entry("a/l", "link", target="../😀"),
    ]
    fields = [
        {"path": e.path, "kind": e.kind, "digest": e.digest, "size": e.size, "target": e.target}
        for e in entries
    ]
    data = json.dumps(fields, separators=(",", ":")).encode()
    digest = save(entries, tmp_path / "manifest.json")
    assert (tmp_path / "manifest.json").read_bytes() == data
    assert digest == hashlib.sha256(data).hexdigest()
    assert load(tmp_path / "manifest.json") == entries


def _aged(root: Path, seconds: float) -> None:
    """Make every file under `root` look last changed `seconds` ago."""
    then = time.time() - seconds
    for path in [root, *root.rglob("*")]:
        os.utime(path, (then, then), follow_symlinks=False)


def test_the_hash_cache_reads_only_files_that_changed(tmp_path: Path) -> None:
    site = tmp_path / "site"
    (site / "a").mkdir(parents=True)
    for i in range(20):
        (site / "a" / f"{i}.txt").write_text(f"file {i}")
    (site / "index.html").write_text("hi")
    _aged(site, 3600)
    cache = cache_file(site, {"XDG_CACHE_HOME": str(tmp_path / "cache")})
    assert cache is not None and cache.is_relative_to(tmp_path / "cache")

    first = describe(site, LIMITS, cache)
    assert first.hashed == 21
    remember(cache, site, first, None)
    assert cache.exists()
    again = describe(site, LIMITS, cache)
    assert again.hashed == 0 and again.items == first.items

    (site / "a" / "3.txt").write_text("changed")
    _aged(site / "a" / "3.txt", 1800)
    third = describe(site, LIMITS, cache)
    assert third.hashed == 1
    changed = {i.path: i.sha256 for i in third.items}["a/3.txt"]
    assert changed == hashlib.sha256(b"changed").hexdigest()
    remember(cache, site, third, None)

    # Another file put in a file's place, with its size and times, is another inode.
    (site / "a" / "4.tmp").write_text("file X")
    _aged(site / "a" / "4.tmp", 3600)
    (site / "a" / "4.tmp").replace(site / "a" / "4.txt")
    fourth = describe(site, LIMITS, cache)
    assert fourth.hashed == 1
    replaced = {i.path: i.sha256 for i in fourth.items}["a/4.txt"]
    assert replaced == hashlib.sha256(b"file X").hexdigest()
    remember(cache, site, fourth, None)

    # A file changed just now is hashed every time until it has settled.
    (site / "index.html").write_text("ho")
    for _ in range(2):
        changing = describe(site, LIMITS, cache)
        assert changing.hashed == 1
        remember(cache, site, changing, None)


def test_the_client_describes_a_tree_as_its_changes_to_the_upload_it_sent(tmp_path: Path) -> None:
    site = tmp_path / "site"
    (site / "a").mkdir(parents=True)
    for name in ("1.txt", "2.txt", "3.txt"):
        (site / "a" / name).write_text(name)
    (site / "index.html").write_text("hi")
    _aged(site, 3600)
    cache = cache_file(site, {"XDG_CACHE_HOME": str(tmp_path / "cache")})
    api = "http://127.0.0.1:1"

    first = describe(site, LIMITS, cache, api)
    assert first.sent is None
    remember(cache, site, first, Sent(api, "1" * 64))
    assert describe(site, LIMITS, cache, "http://127.0.0.1:2").sent is None

    (site / "index.html").write_text("ho")
    (site / "a" / "2.txt").unlink()
    (site / "b").symlink_to("a")
    second = describe(site, LIMITS, cache, api)
    assert second.sent == Sent(api, "1" * 64)
    changed, removed = changes(second)
    assert sorted(i.path for i in changed) == ["b", "index.html"] and removed == ["a/2.txt"]

    # Sent as another upload, or never sent, a tree is described against nothing older.
    remember(cache, site, second, None)
    assert describe(site, LIMITS, cache, api).sent is None


def test_cleanup_removes_only_old_blobs_no_kept_manifest_names(tmp_path: Path) -> None:
    layout = Layout(tmp_path / "home")
    kept_blob, lone_blob, fresh_blob = (hashlib.sha256(b).hexdigest() for b in (b"k", b"l", b"f"))
    kept = _store(layout, [file("k", kept_blob, 1)], {kept_blob: b"k", lone_blob: b"l"})
    gone = _store(layout, [file("l", lone_blob, 1)], {fresh_blob: b"f"})
    _aged(layout.uploads, 7200)
    os.utime(layout.upload(kept))
    os.utime(blob_path(layout.uploads, fresh_blob))
    scratch = layout.uploads / BLOBS / "incoming"
    scratch.mkdir()
    (scratch / "partial").write_bytes(b"x")

    report = clean(
        layout,
        ReconcileInput(host_queue="unused", upload_retention_seconds=3600),
        Records(histories=lambda _: {}, deployments=lambda _: {}, waiting=[]),
        lambda: None,
    )
    assert report.uploads == [gone] and report.blobs == 1
    assert blob_path(layout.uploads, kept_blob).exists(), "a kept manifest names it"
    assert not blob_path(layout.uploads, lone_blob).exists(), "old, and only a removed one did"
    assert blob_path(layout.uploads, fresh_blob).exists(), "touched within the retention"
    assert (scratch / "partial").exists(), "a blob may still be arriving"
    assert layout.upload(kept).exists()
