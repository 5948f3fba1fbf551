"""Runs: the steps and gates of `entitlements run` and `entitlements migrate`, the run lock and summary."""
