"""Local HTTP servers that speak each payment provider's real API and sign like the provider.

They stand in for the outside world only; our code reaches them over real sockets through the
official SDKs, configured with `*_API_BASE` / `*_GATEWAY` settings.
"""
