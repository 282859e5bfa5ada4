"""The `consentry` command: a thin face over the library.

This module only assembles it; each area's commands live in `consentry.commands`.
"""

from __future__ import annotations

import typer

from .commands import (
    admin,
    audit,
    center,
    decide,
    generate,
    ledger,
    mail,
    model,
    notices,
    policy,
    snapshot,
)

app = typer.Typer(
    help="Decide which user-generated content may train AI models, and prove it.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)

# In the order `consentry --help` lists them: first the top-level commands
# (`consentry validate`; each area's `top`, added without a name), then the
# sub-apps (`consentry ledger import`; each area's `app`).
app.add_typer(decide.top)  # validate, evaluate, explain
app.add_typer(ledger.top)  # object
app.add_typer(generate.top)  # generate, demo
app.add_typer(center.top)  # serve
app.add_typer(notices.top)  # notify
app.add_typer(model.top)  # impact
app.add_typer(audit.top)  # report, documents
app.add_typer(snapshot.app, name="snapshot")
app.add_typer(model.app, name="model")
app.add_typer(audit.app, name="audit")
app.add_typer(notices.app, name="notices")
app.add_typer(ledger.app, name="ledger")
app.add_typer(policy.app, name="policy")
app.add_typer(admin.app, name="admin")
app.add_typer(mail.app, name="mail")


def main() -> None:  # pragma: no cover
    app()


if __name__ == "__main__":  # pragma: no cover
    main()
