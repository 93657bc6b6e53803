"""`upload-processor configure`: save the deployment every command uses by default.

    upload-processor configure --stack upload-prod --profile lab --region us-west-2
    upload-processor configure --endpoint-url http://127.0.0.1:5050   # a local cloud
    upload-processor configure --stack ""                             # forget the stack
    upload-processor configure                                        # show what is saved

The file is INI, the AWS CLI way (upload_processor_tools.commands.locate.config_path):
options and environment variables given to a command still win over it.
"""

from __future__ import annotations

import typer


def configure(
    stack: str | None = typer.Option(None, "--stack", metavar="NAME", help="The stack's name."),
    profile: str | None = typer.Option(
        None, "--profile", metavar="NAME", help="The AWS CLI profile."
    ),
    region: str | None = typer.Option(None, "--region", metavar="REGION", help="The region."),
    endpoint_url: str | None = typer.Option(
        None, "--endpoint-url", metavar="URL", help="A local cloud (`local serve`)."
    ),
) -> None:
    """Save the default deployment (an empty value forgets one); print what is saved."""
    from upload_processor_tools.commands.locate import (
        config_path,
        save_defaults,
        saved_defaults,
    )

    given = {"stack": stack, "profile": profile, "region": region, "endpoint_url": endpoint_url}
    if any(value is not None for value in given.values()):
        save_defaults(given)
    saved = saved_defaults()
    typer.echo(f"# {config_path()}")
    for key, value in saved.items():
        typer.echo(f"{key} = {value}")
    if not saved:
        typer.echo("# nothing saved: commands need --stack or --endpoint-url")
