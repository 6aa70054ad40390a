"""Vouchers: discounts a cart carries and checkout applies, with limits that hold under load."""
