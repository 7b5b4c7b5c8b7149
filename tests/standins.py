"""Stand-in activities for testing the workflows' decisions: registered under the real
activity names, they do no work, record each call, and fail or hold when a test tells them
to. The workflows run unchanged on the real Temporal dev server; only what the activities
do is replaced, so a test can make any phase fail, stall or be cancelled in a second instead
of arranging a real fault in a real component."""

import asyncio
import enum
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

from temporalio import activity
from temporalio.exceptions import ApplicationError

from slipway.models import (
    BuildResult,
    CopyInput,
    CopyResult,
    DeploymentInput,
    EndNotice,
    FailInput,
    HealthInput,
    HealthResult,
    PhaseInput,
    ProbeResult,
    RetireInput,
    RouteResult,
    SkipInput,
    SourceResult,
    SupersedeInput,
    SwitchResult,
    TurnAnswer,
    TurnRequest,
)
from slipway.phases import Status

T = TypeVar("T")

BEAT_EVERY = 0.05
"""How often a holding stand-in heartbeats: a cancel reaches an activity only through the
answer to a heartbeat."""


class Act(enum.Enum):
    """What a stand-in does instead of answering at once."""

    FAIL = "fail"
    """Raise an ApplicationError."""
    BLOCK = "block"
    """Heartbeat until cancelled, then end cancelled: a phase that honours a cancel."""
    FINISH_ON_CANCEL = "finish_on_cancel"
    """Heartbeat until cancelled, then return its result anyway: a phase that finishes as
    the cancel arrives."""
    HOLD = "hold"
    """Heartbeat until the test releases it, then answer."""
    STALL = "stall"
    """Wait without heartbeating: a worker that hung, which only a heartbeat timeout finds."""


@dataclass
class Fault:
    """One instruction for a stand-in; `times` calls use it (None: every call)."""

    act: Act
    deployment_id: str | None = None
    message: str = "injected failure"
    type: str | None = None
    non_retryable: bool = False
    times: int | None = 1


@dataclass(frozen=True)
class Call:
    """One call of a stand-in: the activity's name, the deployment, the argument field that
    tells calls apart (a skipped phase, a failed status, the superseding deployment), and
    the attempt it was."""

    name: str
    deployment_id: str
    detail: str = ""
    attempt: int = 1


@dataclass
class StandIns:
    """The stand-in activities of one test, with what they were called with and told to do.

    `tracking()` go on the workflow's own task queue, `host()` on the host queue, as in the
    real worker."""

    build_type: str = "static"
    """The deployment type `build` reports: "static", or "container" for an app."""
    registered: dict[str, Status] = field(default_factory=dict)
    """The status `register_deployment` finds for a deployment already recorded."""
    previous_release: str | None = None
    previous_url: str | None = None
    """What `activate` reports served before (an app's old container answers at the url)."""
    probes: list[ProbeResult] = field(default_factory=list)
    notices: list[EndNotice] = field(default_factory=list)
    """What `probe_release` answers in turn; healthy once they run out."""
    calls: list[Call] = field(default_factory=list)
    _faults: dict[str, list[Fault]] = field(default_factory=dict)
    _entered: dict[tuple[str, str | None], asyncio.Event] = field(default_factory=dict)
    _released: dict[str, asyncio.Event] = field(default_factory=dict)

    def tell(self, name: str, fault: Fault) -> None:
        """Make the activity `name` act on `fault` for its next calls."""
        self._faults.setdefault(name, []).append(fault)

    def fail(
        self,
        name: str,
        message: str = "injected failure",
        *,
        type: str | None = None,
        non_retryable: bool = False,
        times: int | None = 1,
    ) -> None:
        """Make the next `times` calls of `name` fail."""
        self.tell(name, Fault(Act.FAIL, None, message, type, non_retryable, times))

    def release(self, name: str) -> None:
        """Let held calls of `name` answer."""
        self._released.setdefault(name, asyncio.Event()).set()

    async def entered(self, name: str, deployment_id: str | None = None) -> None:
        """Wait until `name` has been called (for that deployment, if given)."""
        await asyncio.wait_for(self._event(name, deployment_id).wait(), timeout=30)

    def names(self, deployment_id: str | None = None) -> list[str]:
        """The activities called, in order (for one deployment, if given)."""
        return [c.name for c in self.calls if deployment_id in (None, c.deployment_id)]

    def details(self, name: str) -> list[str]:
        """The key argument of each call of `name`, in order."""
        return [c.detail for c in self.calls if c.name == name]

    def tracking(self) -> list[Callable[..., object]]:
        """The database activities, for the worker on the workflows' own queue."""
        return [
            self.register,
            self.skip_phase,
            self.mark_failed,
            self.supersede,
            self.notify_end,
            self.take_turn,
        ]

    def host(self) -> list[Callable[..., object]]:
        """The host-bound activities, for the worker on the deployment's host queue."""
        return [
            self.pull_source,
            self.build,
            self.copy_files,
            self.stage_release,
            self.update_routes,
            self.health_check,
            self.activate,
            self.probe_release,
            self.retire_previous,
            self.restore_previous,
        ]

    def _event(self, name: str, deployment_id: str | None) -> asyncio.Event:
        return self._entered.setdefault((name, deployment_id), asyncio.Event())

    def _fault(self, name: str, deployment_id: str) -> Fault | None:
        for fault in self._faults.get(name, []):
            if fault.deployment_id not in (None, deployment_id):
                continue
            if fault.times is not None:
                fault.times -= 1
                if fault.times == 0:
                    self._faults[name].remove(fault)
            return fault
        return None

    async def _act(self, name: str, deployment_id: str, result: T, detail: str = "") -> T:
        """Record the call, then do what the test told this activity to do."""
        attempt = activity.info().attempt
        self.calls.append(Call(name, deployment_id, detail, attempt))
        self._event(name, None).set()
        self._event(name, deployment_id).set()
        fault = self._fault(name, deployment_id)
        if fault is None:
            return result
        if fault.act is Act.FAIL:
            # The real activities' failures carry the attempt (activities.failures).
            raise ApplicationError(
                fault.message,
                {"attempt": attempt},
                type=fault.type,
                non_retryable=fault.non_retryable,
            )
        if fault.act is Act.STALL:
            await asyncio.sleep(3600)
            return result
        released = self._released.setdefault(name, asyncio.Event())
        try:
            while not (fault.act is Act.HOLD and released.is_set()):
                activity.heartbeat()
                await asyncio.sleep(BEAT_EVERY)
        except asyncio.CancelledError:
            if fault.act is not Act.FINISH_ON_CANCEL:
                raise
        return result

    @activity.defn(name="register_deployment")
    async def register(self, inp: PhaseInput) -> Status:
        d = inp.deployment
        return await self._act("register_deployment", d.deployment_id, self._status(d))

    def _status(self, d: DeploymentInput) -> Status:
        return self.registered.get(d.deployment_id, Status.QUEUED)

    @activity.defn(name="skip_phase")
    async def skip_phase(self, inp: SkipInput) -> None:
        await self._act("skip_phase", inp.deployment.deployment_id, None, inp.phase.value)

    @activity.defn(name="mark_failed")
    async def mark_failed(self, inp: FailInput) -> None:
        await self._act("mark_failed", inp.deployment.deployment_id, None, inp.status.value)

    @activity.defn(name="notify_end")
    async def notify_end(self, notice: EndNotice) -> bool:
        """Kept apart from `calls`: the notification runs beside the deployment's end."""
        self.notices.append(notice)
        return True

    @activity.defn(name="supersede")
    async def supersede(self, inp: SupersedeInput) -> None:
        await self._act("supersede", inp.deployment.deployment_id, None, inp.by)

    @activity.defn(name="take_turn")
    async def take_turn(self, request: TurnRequest) -> TurnAnswer:
        """The project's turn is free: nothing of it was started directly in a lane."""
        return await self._act("take_turn", request.project, TurnAnswer(), "")

    @activity.defn(name="pull_source")
    async def pull_source(self, inp: PhaseInput) -> SourceResult:
        d = inp.deployment
        source = SourceResult(upload_id=d.upload_id, digest="0" * 64, files=1, bytes=1)
        return await self._act("pull_source", d.deployment_id, source, d.upload_id)

    @activity.defn(name="build")
    async def build(self, inp: PhaseInput) -> BuildResult:
        container = self.build_type != "static"
        built = BuildResult.model_validate(
            {
                "detected_type": "dockerfile" if container else "static",
                "deployment_type": self.build_type,
                "image_id": f"sha256:{'1' * 64}" if container else None,
            }
        )
        return await self._act("build", inp.deployment.deployment_id, built)

    @activity.defn(name="copy_files")
    async def copy_files(self, inp: CopyInput) -> CopyResult:
        copied = CopyResult(files_copied=1, total_files=1, bytes=1, linked=0)
        return await self._act("copy_files", inp.deployment.deployment_id, copied, inp.site_root)

    @activity.defn(name="stage_release")
    async def stage_release(self, inp: PhaseInput) -> None:
        d = inp.deployment
        await self._act("stage_release", d.deployment_id, None, d.release)

    @activity.defn(name="update_routes")
    async def update_routes(self, inp: PhaseInput) -> RouteResult:
        d = inp.deployment
        container = self.build_type != "static"
        routed = RouteResult(
            changed=True,
            version="route-1",
            container_id="c0ffee" if container else None,
            port=40000 if container else None,
        )
        return await self._act("update_routes", d.deployment_id, routed, d.release)

    @activity.defn(name="health_check")
    async def health_check(self, inp: HealthInput) -> HealthResult:
        healthy = HealthResult(url=f"http://{inp.deployment.project}.test/", attempts=1)
        d = inp.deployment
        return await self._act("health_check", d.deployment_id, healthy, inp.route_version)

    @activity.defn(name="activate")
    async def activate(self, inp: PhaseInput) -> SwitchResult:
        d = inp.deployment
        switched = SwitchResult(
            previous_release=self.previous_release, previous_url=self.previous_url
        )
        return await self._act("activate", d.deployment_id, switched, d.release)

    @activity.defn(name="probe_release")
    async def probe_release(self, inp: PhaseInput) -> ProbeResult:
        probe = self.probes.pop(0) if self.probes else ProbeResult(ok=True, detail="200")
        return await self._act("probe_release", inp.deployment.deployment_id, probe, probe.detail)

    @activity.defn(name="retire_previous")
    async def retire_previous(self, inp: RetireInput) -> str | None:
        await self._act("retire_previous", inp.deployment.deployment_id, None, inp.url)
        return None

    @activity.defn(name="restore_previous")
    async def restore_previous(self, d: DeploymentInput) -> None:
        await self._act("restore_previous", d.deployment_id, None, d.release)
