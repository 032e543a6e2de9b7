"""Cluster deployments: node processes under a Thespian multiprocTCPBase system, and RemoteSwarm."""
