"""The local Rebyte-compatible server, by concern; tests/fake_rebyte.py is its face (import
from there, and see its docstring for the layout, knobs, markers and choices)."""
