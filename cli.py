"""The `livescore` command (placeholder while the foundation lands)."""

import click


@click.group()
def main() -> None:
    """LiveScore."""
