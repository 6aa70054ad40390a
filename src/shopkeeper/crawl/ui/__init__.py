"""The crawl web UI at `/crawl`: server-rendered pages (Jinja + htmx) over the crawl services."""
