"""pulling_source: the upload (or the commit a git ref resolves to, exported as one),
unpacked safely into the deployment's work dir, and its manifest (every entry with its
content digest). A content manifest is built from the content and blob stores, its files'
digests checked on the way (`blobs.materialize`), so its tree is not read again to
describe it."""

import hashlib
import json
import shutil
import uuid
from pathlib import Path

from activities.adapters import stored_tree
from activities.adapters.archive import UnsafeArchiveError, kind_of, unpack
from activities.adapters.beat import Beat
from activities.adapters.blobs import materialize
from activities.adapters.content_manifest import ManifestError
from activities.adapters.files import write_atomically
from activities.adapters.git import Repository
from activities.adapters.manifest import save, scan
from slipway.errors import BadInputError
from slipway.git_remote import GitError, check_url, shown
from slipway.layout import Layout
from slipway.limits import UnpackLimits
from slipway.models import GitSource, SourceResult

_RESULT = "source.json"
_RESOLVED = "git.json"


def finished(layout: Layout, deployment_id: str) -> SourceResult | None:
    """The result of a completed pull, if its source is still on disk."""
    work = layout.work(deployment_id)
    if (work / _RESULT).exists() and layout.source(deployment_id).is_dir():
        return SourceResult.model_validate_json((work / _RESULT).read_text())
    return None


def pull(
    layout: Layout, upload_id: str, deployment_id: str, limits: UnpackLimits, beat: Beat
) -> SourceResult:
    """Unpack the upload into the deployment's source dir and describe it.

    Idempotent: it unpacks into a scratch dir that only becomes `source` once complete, and
    the result file written last lets a retry adopt finished work instead of redoing it. A
    refused upload leaves nothing behind: not its work dir, nor the upload itself, which
    would be refused again.
    """
    work = layout.work(deployment_id)
    result_file = work / _RESULT
    done = finished(layout, deployment_id)
    if done is not None:
        return done
    upload = layout.upload(upload_id)
    if not upload.exists():
        raise BadInputError(
            f"upload {upload_id} is not in the upload store ({layout.uploads}); upload again"
        )
    scratch = work / "source.partial"
    shutil.rmtree(scratch, ignore_errors=True)
    scratch.mkdir(parents=True)
    stored = False
    try:
        if kind_of(upload) == "manifest":
            built = materialize(upload, scratch, layout.store, limits, beat.check)
            entries, stored = built.entries, built.stored
        else:
            unpack(upload, scratch, limits, beat.check)
            entries = scan(scratch, beat)
    except (UnsafeArchiveError, ManifestError) as err:
        shutil.rmtree(work, ignore_errors=True)
        upload.unlink(missing_ok=True)
        raise BadInputError(f"upload {upload_id} was refused: {err}") from None
    digest = save(entries, layout.manifest(deployment_id))
    source = layout.source(deployment_id)
    stored_tree.forget(work)
    shutil.rmtree(source, ignore_errors=True)
    scratch.rename(source)
    if stored:
        stored_tree.record(work, source)
    result = SourceResult(
        upload_id=upload_id,
        digest=digest,
        files=sum(1 for e in entries if e.kind == "file"),
        bytes=sum(e.size for e in entries),
    )
    write_atomically(result_file, result.model_dump_json())
    return result


def _store(layout: Layout, archive: Path) -> str:
    """Put an exported archive into the upload store under the digest of its bytes, as any
    upload is kept; returns its upload id."""
    digest = hashlib.sha256()
    with archive.open("rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    upload_id = digest.hexdigest()[:32]
    archive.replace(layout.upload(upload_id))
    return upload_id


def _export(layout: Layout, repo: Repository, commit: str) -> str:
    """The commit's tree as an upload (no `.git`); a commit with submodules is refused."""
    declared = repo.submodules(commit)
    if declared:
        raise GitError(
            f"the commit has submodules ({', '.join(declared)}), which Slipway does not fetch: "
            "a deployment comes from one repository (vendor what it needs)"
        )
    layout.uploads.mkdir(parents=True, exist_ok=True)
    scratch = layout.uploads / f".incoming-{uuid.uuid4().hex}"
    try:
        repo.export(commit, scratch)
        return _store(layout, scratch)
    finally:
        scratch.unlink(missing_ok=True)


def pull_git(
    layout: Layout,
    deployment_id: str,
    git: GitSource,
    repo: Repository,
    limits: UnpackLimits,
    beat: Beat,
) -> SourceResult:
    """Fetch the repository into the project's mirror, resolve the ref to a commit, export
    that commit's tree as an upload, and unpack it as any upload.

    The commit is recorded in the work dir as soon as it is resolved, so a retried or resumed
    pull deploys the commit it resolved the first time, never a newer one (re-exported from
    the mirror if its upload was cleaned away).
    """
    done = finished(layout, deployment_id)
    if done is not None:
        return done
    record = layout.work(deployment_id) / _RESOLVED
    try:
        check_url(git.url)
        if record.exists():
            resolved = json.loads(record.read_text())
            commit, ref, upload_id = (str(resolved[k]) for k in ("commit", "ref", "uploadId"))
            if not layout.upload(upload_id).exists():
                repo.fetch(beat.check)
                upload_id = _export(layout, repo, commit)
        else:
            repo.fetch(beat.check)
            ref = git.ref or repo.default_branch()
            commit = repo.resolve(ref)
            upload_id = _export(layout, repo, commit)
    except GitError as err:
        raise BadInputError(f"{shown(git.url)}: {err}") from None
    record.parent.mkdir(parents=True, exist_ok=True)
    write_atomically(record, json.dumps({"commit": commit, "ref": ref, "uploadId": upload_id}))
    pulled = pull(layout, upload_id, deployment_id, limits, beat)
    return pulled.model_copy(update={"commit": commit, "ref": ref})
