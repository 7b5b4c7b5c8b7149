"""The HTTP API and the deployments page (`slipway api`): a thin layer over `starter.api`."""
