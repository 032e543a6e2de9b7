"""The swarm's bookkeeping without I/O: peer state and priorities, retry timers, the queue."""
