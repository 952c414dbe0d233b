"""`diagkit keys generate`: make the Ed25519 signing and X25519 encryption key pairs."""

from __future__ import annotations

from pathlib import Path

import click

from diagkit.cli.common import debug_option


@click.group(epilog="Example:\n\n  diagkit keys generate\n\n  diagkit keys id signing.pub\n\n  diagkit keys dir")
def keys() -> None:
    """Signing and encryption keys for escalation packets."""


@keys.command("generate", epilog="Example:\n\n  diagkit keys generate\n\n  diagkit keys generate --dir ./vendor-keys")
@click.option("--dir", "directory", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Folder for the key files [default: the diagkit config folder].")
@click.option("--force", is_flag=True, help="Replace keys that already exist there.")
@click.option("--comment", default=None, help="Comment at the end of the public key lines [default: user@host].")
@debug_option
def generate(directory: Path | None, force: bool, comment: str | None) -> None:
    """Write signing.key/.pub (Ed25519) and encryption.key/.pub (X25519); print the public keys.

    Private key files are PKCS#8 PEM, mode 0600. Public keys are one line you can paste and pin;
    their key id (e.g. ed25519:3f9a1c...) is what you compare with the person you exchange packets with.
    """
    from diagkit.packet.keys import generate_keys

    made = generate_keys(directory, force=force, comment=comment)
    click.echo(f"wrote keys to {made['dir']}")
    for role in ("signing", "encryption"):
        item = made[role]
        click.echo(f"{role:<10} {item['key_id']}  {item['public_path']}")
        click.echo(f"  {item['public_key']}")


@keys.command("id", epilog="Example:\n\n  diagkit keys id ~/.config/diagkit/signing.pub")
@click.argument("public_key")
@debug_option
def key_id_command(public_key: str) -> None:
    """Print the key id of a public key file (or of a pasted key line)."""
    from diagkit.errors import KeyFileError
    from diagkit.packet.keys import ED25519, X25519, load_public_key

    try:
        public = load_public_key(public_key, ED25519)
    except KeyFileError:
        public = load_public_key(public_key, X25519)
    click.echo(public.key_id)


@keys.command("dir", epilog="Example:\n\n  diagkit keys dir\n\n  ls \"$(diagkit keys dir)\"")
@debug_option
def dir_command() -> None:
    """Print the folder that holds your keys and trusted keys (DIAGKIT_CONFIG_DIR overrides it)."""
    from diagkit.config import config_dir

    click.echo(str(config_dir()))
