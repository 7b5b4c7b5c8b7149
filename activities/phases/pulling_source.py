"""pulling_source: the upload, unpacked safely into the deployment's work dir, and its
manifest (every entry with its content digest)."""

import shutil

from activities.adapters.archive import UnsafeArchiveError, unpack
from activities.adapters.beat import Beat
from activities.adapters.files import write_atomically
from activities.adapters.manifest import save, scan
from slipway.errors import BadInputError
from slipway.layout import Layout
from slipway.limits import UnpackLimits
from slipway.models import SourceResult

_RESULT = "source.json"


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
    try:
        unpack(upload, scratch, limits, beat.check)
    except UnsafeArchiveError as err:
        shutil.rmtree(work, ignore_errors=True)
        upload.unlink(missing_ok=True)
        raise BadInputError(f"upload {upload_id} was refused: {err}") from None
    entries = scan(scratch, beat)
    digest = save(entries, layout.manifest(deployment_id))
    shutil.rmtree(layout.source(deployment_id), ignore_errors=True)
    scratch.rename(layout.source(deployment_id))
    result = SourceResult(
        upload_id=upload_id,
        digest=digest,
        files=sum(1 for e in entries if e.kind == "file"),
        bytes=sum(e.size for e in entries),
    )
    write_atomically(result_file, result.model_dump_json())
    return result
