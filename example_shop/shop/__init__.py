"""The demo shop app: catalog, cart, checkout and the seed command."""
