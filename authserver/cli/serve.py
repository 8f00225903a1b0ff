"""``authserver serve`` and ``authserver migrate``."""

from __future__ import annotations

import dataclasses
import os
from typing import Any

import click

from authserver.cli.base import Context, command, now
from authserver.config import MAX_WORKERS, config_file, worker_count
from authserver.runtime import serving, supervisor
from authserver.runtime.connections import Limits
from authserver.runtime.metrics import one_view_of_the_workers
from authserver.runtime.ops import configure_logging


class Workers(click.ParamType[int | str]):
    """``--workers``: 1 to 64, or "auto" (one per CPU)."""

    name = "N|auto"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if value == "auto" or isinstance(value, int):
            return value
        try:
            number = int(value)
        except ValueError:
            self.fail(f'{value!r} is not a number or "auto"', param, ctx)
        if not 1 <= number <= MAX_WORKERS:
            self.fail(f"{number} is not in the range 1 to {MAX_WORKERS}", param, ctx)
        return number


WORKERS = Workers()


@click.command()
@click.option("--host", default=None, help="Bind address (default: config host, 127.0.0.1).")
@click.option(
    "--port", type=click.IntRange(0, 65535), default=None, help="Port (default: config port, 8000)."
)
@click.option(
    "--workers",
    type=WORKERS,
    default=None,
    metavar="N|auto",
    help='Worker processes, 1 to 64 or "auto" for one per CPU (default: config workers, auto).',
)
@click.option(
    "--tls-cert",
    metavar="FILE",
    default=None,
    help="Serve https with this PEM certificate (chain); needs --tls-key.",
)
@click.option("--tls-key", metavar="FILE", default=None, help="The certificate's PEM private key.")
@command
def serve(
    ctx: Context,
    host: str | None,
    port: int | None,
    workers: int | str | None,
    tls_cert: str | None,
    tls_key: str | None,
) -> None:
    """Migrate the database and run the server."""
    import uvicorn

    open_files = supervisor.raise_open_file_limit()
    if (tls_cert is None) != (tls_key is None):
        raise click.UsageError("--tls-cert and --tls-key go together")
    settings = ctx.settings
    host = host or settings.host
    port = port if port is not None else settings.port
    processes = worker_count(workers if workers is not None else settings.workers)
    if tls_cert is not None and tls_key is not None:
        serving.check_tls(tls_cert, tls_key)
    # uvicorn binds only after the application has started, and then logs a traceback.
    serving.check_listen(host, port)
    issuer, issuer_warnings = serving.serve_issuer(
        issuer=settings.issuer,
        given="issuer" in settings.given,
        allow_insecure=settings.allow_insecure_issuer,
        host=host,
        port=port,
        tls=tls_cert is not None,
    )
    if issuer != settings.issuer:
        settings = ctx.use_settings(dataclasses.replace(settings, issuer=issuer))
    # Every worker loads its settings itself (app_factory): the environment takes it there.
    os.environ["AUTHSERVER_ISSUER"] = settings.issuer
    for warning in issuer_warnings:
        click.echo(f"warning: {warning}", err=True)
    configure_logging(settings.log_level)
    database = ctx.database
    active = ctx.cases.keys.ensure_active(now=now())
    ctx.close()
    notice = serving.conductorone_notice(
        settings.issuer, (client.id for client in settings.device_clients)
    )
    if notice:
        click.echo(notice, err=True)
    if not settings.mail_enabled:
        click.echo("note: e-mail is off (no [mail] smtp_url in the config)", err=True)
    click.echo(
        serving.startup_line(
            url=f"{'https' if tls_cert else 'http'}://{serving.host_port(host, port)}",
            workers=processes,
            config=config_file(),
            database=database,
            issuer=settings.issuer,
            key=active,
        ),
        err=True,
    )
    with one_view_of_the_workers(processes):
        cap = supervisor.connection_cap(settings.max_connections, open_files)
        if cap < settings.max_connections:
            click.echo(
                f"note: at most {cap} connections per worker (max_connections "
                f"{settings.max_connections}, open-file limit {open_files})",
                err=True,
            )
        config = uvicorn.Config(
            "authserver.app:app_factory",
            factory=True,
            host=host,
            port=port,
            workers=processes,
            ssl_certfile=tls_cert,
            ssl_keyfile=tls_key,
            access_log=False,
            log_level=settings.log_level,
            timeout_keep_alive=settings.keep_alive_timeout,
            timeout_graceful_shutdown=10,
            # The source address decides CIDR locks: only our own trusted_proxies logic may
            # read X-Forwarded-For, never uvicorn's (which trusts 127.0.0.1 by default).
            proxy_headers=False,
            server_header=False,
            # Serving TLS itself, this server is the https origin: browsers must not fall back.
            headers=[("Strict-Transport-Security", "max-age=31536000")] if tls_cert else None,
        )
        supervisor.serve(
            config,
            Limits(
                request_read_timeout=settings.request_read_timeout,
                max_connections=cap,
                shutdown_drain=settings.shutdown_drain,
            ),
        )


@click.command("migrate")
@command
def migrate_command(ctx: Context) -> None:
    """Create or upgrade the database schema."""
    ctx.database  # noqa: B018 - opening the database migrates it
    click.echo("database is up to date")
