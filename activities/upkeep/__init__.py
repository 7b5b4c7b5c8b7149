"""Work that keeps a server tidy and watched, beside the phases: cleanup and health probes."""
