"""The simulated world, one module per role along the mail path."""
