"""The shop: catalog, inventory, carts, orders, payments and the staff admin."""
