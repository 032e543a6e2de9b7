"""Thespian actors and the node runtime that hosts them."""
