"""The embedded stack: Temporal, PostgreSQL, Traefik, Caddy and a worker as child processes,
all on 127.0.0.1, all data under one home."""
