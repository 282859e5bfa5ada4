"""The `consentry` command, one module per area; `consentry.cli` assembles them.

Every module registers its commands with decorators on module-level Typer apps:
`app` holds an area's sub-commands (`consentry ledger import`), `top` the area's
commands that stand at the top level (`consentry object`). Library imports stay
inside the command functions, so `consentry --help` loads none of them.
"""
