"""A real worker process that stops dead after one activity has done its work: it writes a
marker file and hangs before reporting, so a test can SIGKILL it at exactly that point.

    python -m tests.chaos_worker <activity name> <marker file>
"""

import asyncio
import logging
import sys
from pathlib import Path
from typing import Any

from temporalio import activity
from temporalio.worker import ActivityInboundInterceptor, ExecuteActivityInput, Interceptor

from slipway.settings import Settings
from worker import serve


class _Hold(ActivityInboundInterceptor):
    def __init__(self, next: ActivityInboundInterceptor, name: str, marker: Path) -> None:
        super().__init__(next)
        self.name = name
        self.marker = marker

    async def execute_activity(self, input: ExecuteActivityInput) -> Any:
        result = await self.next.execute_activity(input)
        if activity.info().activity_type == self.name:
            self.marker.write_text(activity.info().workflow_id or "")
            await asyncio.sleep(3600)
        return result


class Hold(Interceptor):
    """Hang after the named activity's work, before its result reaches Temporal."""

    def __init__(self, name: str, marker: Path) -> None:
        self.name = name
        self.marker = marker

    def intercept_activity(self, next: ActivityInboundInterceptor) -> ActivityInboundInterceptor:
        return _Hold(next, self.name, self.marker)


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO)
    asyncio.run(serve(Settings(), [Hold(sys.argv[1], Path(sys.argv[2]))]))
