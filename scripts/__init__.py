"""Lets `from scripts.rebyte_client import RebyteClient` work from the skill's root folder."""
