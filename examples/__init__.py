"""Runnable examples of apps on profile-stream; each module says how to run it."""
