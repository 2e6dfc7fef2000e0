"""Modules of the Rebyte client and CLI, beside their faces rebyte_client.py and rebyte_cli.py."""
