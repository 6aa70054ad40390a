"""Shipping zones (countries) and their methods, priced per cart; tax rates per country."""
