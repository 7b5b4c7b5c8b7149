#!/bin/sh
# Register Slipway's search attributes once Temporal answers; a repeat is harmless.
set -e
for name in DeploymentPhase ProjectName; do
  temporal operator search-attribute create --namespace default --address temporal:7233 \
    --name "$name" --type Keyword || true
done
temporal operator search-attribute list --namespace default --address temporal:7233 \
  | grep -q DeploymentPhase
