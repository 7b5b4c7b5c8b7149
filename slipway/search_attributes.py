"""The search attributes operators filter deployments by in the Temporal UI."""

from temporalio.common import SearchAttributeKey, SearchAttributePair, TypedSearchAttributes

from slipway.phases import Phase

DEPLOYMENT_PHASE = SearchAttributeKey.for_keyword("DeploymentPhase")
PROJECT_NAME = SearchAttributeKey.for_keyword("ProjectName")

ALL = (DEPLOYMENT_PHASE, PROJECT_NAME)
"""Every attribute the server must have registered before a deployment starts."""


def deployment_at_start(project: str) -> TypedSearchAttributes:
    """What a deployment's workflow starts with: its project and its first phase, queued.
    Its workflow sets each phase it enters only when the value changes, so a deployment
    started this way makes one upsert (one history event, one visibility write) fewer."""
    return TypedSearchAttributes(
        [
            SearchAttributePair(PROJECT_NAME, project),
            SearchAttributePair(DEPLOYMENT_PHASE, Phase.QUEUED.value),
        ]
    )
