"""The logs web UI at `/logs`: server-rendered pages (Jinja + htmx, uPlot for the histogram)
over the query service, signed in with the shop's accounts through a session cookie."""
