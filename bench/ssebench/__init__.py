"""bench/sse.py in parts: common (the stack), load, phases, report."""
