"""Where a server keeps uploads, work dirs, releases and routes; every path derives from a
validated name, so a retry finds the same place."""

import hashlib
from dataclasses import dataclass
from pathlib import Path

from slipway.names import validate_deployment_id, validate_project_name, validate_upload_id

RELEASE_MARKER = ".well-known/slipway/release"
"""Path inside a release, and on the site, of the file that names the release."""

SLOTS = ("current", "next")
"""A project's two slots: the release (or container) serving it and the one being proven."""


@dataclass(frozen=True)
class Layout:
    """The directory tree under a server's home."""

    home: Path
    upload_store: Path | None = None
    """Where uploads are kept when not under home: a store every server reads (several
    servers deploying from one API need one they share)."""

    @property
    def identity(self) -> str:
        """A short name for this home, to tell its containers and images from those of
        other homes sharing the Docker Engine."""
        return hashlib.sha256(str(self.home).encode()).hexdigest()[:12]

    @property
    def uploads(self) -> Path:
        return self.upload_store or self.home / "uploads"

    @property
    def sites(self) -> Path:
        return self.home / "sites"

    @property
    def store(self) -> Path:
        """Content-addressed file store; release files are hard links into it."""
        return self.home / "store"

    @property
    def routes(self) -> Path:
        """Traefik's dynamic configuration directory (file provider, watched)."""
        return self.home / "traefik" / "dynamic"

    def upload(self, upload_id: str) -> Path:
        return self.uploads / validate_upload_id(upload_id)

    def work(self, deployment_id: str) -> Path:
        return self.home / "work" / validate_deployment_id(deployment_id)

    def source(self, deployment_id: str) -> Path:
        """The deployment's unpacked upload."""
        return self.work(deployment_id) / "source"

    def manifest(self, deployment_id: str) -> Path:
        """What the unpacked upload holds, with a digest per file."""
        return self.work(deployment_id) / "manifest.json"

    def static_rules(self, deployment_id: str) -> Path:
        """A static site's `[static]` rules, validated by building for copying_files to put in
        the release; absent when the site keeps the defaults."""
        return self.work(deployment_id) / "static-rules.json"

    def mirror(self, project: str) -> Path:
        """The project's bare mirror of its git repository: a redeploy only tops it up."""
        return self.home / "mirrors" / f"{validate_project_name(project)}.git"

    def git_home(self, project: str) -> Path:
        """git's home while Slipway runs it for the project: the hosts it has met (one
        project's first contact with a host decides nothing for another's) and its deploy
        key for one command."""
        return self.home / "git" / validate_project_name(project)

    def site(self, project: str) -> Path:
        return self.sites / validate_project_name(project)

    def releases(self, project: str) -> Path:
        return self.site(project) / "releases"

    def release(self, project: str, deployment_id: str) -> Path:
        return self.releases(project) / validate_deployment_id(deployment_id)

    @property
    def slots(self) -> Path:
        """The links the static server follows to a project's releases, kept outside `sites`
        so that it can refuse every link under `sites` (see the Caddy service)."""
        return self.home / "slots"

    def current(self, project: str) -> Path:
        """The link to the release serving the project."""
        return self.slots / validate_project_name(project) / "current"

    def candidate(self, project: str) -> Path:
        """The link to the release being proven, which only candidate requests reach."""
        return self.slots / validate_project_name(project) / "next"

    @property
    def upstreams(self) -> Path:
        """Where the static server (Caddy) reads which container serves an app: one directory
        per project, one file per slot, read on every request."""
        return self.home / "upstreams"

    def upstream(self, project: str, slot: str) -> Path:
        """The file naming the container (`host:port`) that the project's `slot` (`current`
        or `next`) of an app is served by."""
        if slot not in SLOTS:
            raise ValueError(f"no slot {slot!r}: a slot is one of {', '.join(SLOTS)}")
        return self.upstreams / validate_project_name(project) / slot

    @property
    def route_records(self) -> Path:
        """Every project's route as Slipway rendered it, whether Traefik reads it or not:
        beside Traefik's directory, not in it (see `activities.adapters.traefik`)."""
        return self.routes.parent / "projects"

    def route(self, project: str) -> Path:
        """The project's route as rendered: where its routers point, what the deployments
        read back."""
        return self.route_records / f"{validate_project_name(project)}.yml"

    def served_route(self, project: str) -> Path:
        """The project's routers in Traefik's directory: only for a project the shared route
        does not serve (a custom domain, a preview's HTTPS, stopped)."""
        return self.routes / f"{validate_project_name(project)}.yml"

    @property
    def shared_route(self) -> Path:
        """The routers every other project's base name is served by (`_` occurs in no
        project's name, so no project's file can take its place)."""
        return self.routes / "_projects.yml"

    @property
    def route_scratch(self) -> Path:
        """Where a file of Traefik's watched directory is written before it is renamed in:
        beside the directory, on the same file system, so that Traefik sees one event per
        write (its file provider reads and parses every file again on each event)."""
        return self.routes.parent / "scratch"
