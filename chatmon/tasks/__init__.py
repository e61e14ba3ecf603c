"""Background loops registered as Reflex lifespan tasks (they run once per worker)."""
