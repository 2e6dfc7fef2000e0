"""The command line behind scripts/rebyte_cli.py, one module per concern.

app (the parser, the command tables, main) imports the command modules (create, tasks,
batch, artifacts, computer, webhook) when a command line names them; they share waiting,
fetching, session, options, output and errors, which import nothing above them.
"""
