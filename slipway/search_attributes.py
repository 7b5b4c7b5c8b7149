"""The search attributes operators filter deployments by in the Temporal UI."""

from temporalio.common import SearchAttributeKey

DEPLOYMENT_PHASE = SearchAttributeKey.for_keyword("DeploymentPhase")
PROJECT_NAME = SearchAttributeKey.for_keyword("ProjectName")

ALL = (DEPLOYMENT_PHASE, PROJECT_NAME)
"""Every attribute the server must have registered before a deployment starts."""
