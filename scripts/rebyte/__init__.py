"""The client's modules, one concern each (the face stays scripts/rebyte_client.py)."""
