"""Sans-IO wire code for the Hyperswarm network.

Nothing in this package opens a socket, reads the clock, sleeps or logs secrets:
state machines are fed bytes and a time value and hand back bytes to send.
"""
