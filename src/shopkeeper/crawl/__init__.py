"""crawl: a distributed crawler scheduling system (frontier, politeness, workers, results)."""
