"""The ground floor: adapters for the file system, archives, Docker, Traefik and HTTP. They
know nothing of Temporal or the database, and raise plain (or `slipway.errors`) errors."""
