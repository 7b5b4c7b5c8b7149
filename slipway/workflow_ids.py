"""Workflow ids: derived from what they act on, so a second start finds the first."""


def deployment_workflow_id(deployment_id: str) -> str:
    """One workflow per deployment, found from its id."""
    return f"deploy-{deployment_id}"


def project_workflow_id(project: str) -> str:
    """The workflow that serializes a project's deployments."""
    return f"project-{project}"


def reconcile_schedule_id(server: str) -> str:
    """The schedule that reconciles one server's deployments and files."""
    return f"slipway-reconcile-{server}"


def monitor_schedule_id(server: str) -> str:
    """The schedule that watches one server's active deployments."""
    return f"slipway-monitor-{server}"


def notify_workflow_id(deployment_id: str, round: int) -> str:
    """The workflow that delivers a deployment's end, once per round."""
    return f"notify-{deployment_id}-r{round}"
