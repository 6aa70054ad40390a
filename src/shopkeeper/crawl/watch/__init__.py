"""Price watches: a SKU's competitor page re-fetched on its schedule through the frontier (so the
global politeness holds), its price read and kept as history, `CompetitorPriceChanged` recorded
on each change."""
