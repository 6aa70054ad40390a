"""Competitors' prices per SKU, as the crawl's price watches read them (`CompetitorPriceChanged`),
beside our own catalog price."""
