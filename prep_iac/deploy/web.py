"""Web publication with nginx: ``live`` as a free static site, framed by the difusor's portal.

Headers: ``X-PREP-Corte`` names the cut the response came from (from
``$realpath_root``, the ``live`` symlink resolved per request, so it is atomic
with the content); ``Content-Security-Policy: frame-ancestors`` from group data
(clause I.6, hence no ``X-Frame-Options``); short revalidated caching for
HTML and data, longer for the shell's assets; no caching of the notice.
Rate limits answer 429 (numbers and reasons in ``group_data/difusores.py``).
Access logs are JSON lines kept ``access_log_retention_days`` by logrotate.
Dot paths are 404, except ``/.well-known/acme-challenge/``, served from
``ACME_WEBROOT`` on port 80 (and 443) so an ACME client's HTTP-01 challenge
(``certbot certonly --webroot -w /var/lib/prep-iac/acme``) can obtain and
renew the optional HTTPS certificate.
"""

from __future__ import annotations

from pyinfra.api.deploy import deploy
from pyinfra.context import host
from pyinfra.operations import files, systemd

from prep_iac.deploy.ha import HEALTH_PORT
from prep_iac.deploy.operations.files import validated_template
from prep_iac.deploy.platform import platform_for
from prep_iac.deploy.rendering import rendered
from prep_iac.deploy.settings import DifusorSettings

ACCESS_LOG = "/var/log/nginx/prep-access.log"
# Seconds: data and HTML may lag a new cut by this much in a cache; the shell
# (styles, scripts, images) is the same from cut to cut.
DATA_MAX_AGE = 30
SHELL_MAX_AGE = 600
# Outside the publication tree: a cut replaces "live" every 10 minutes.
ACME_WEBROOT = "/var/lib/prep-iac/acme"
# systemd starts nginx again this long after it dies.
RESTART_SECONDS = 1
RESTART_DROP_IN = "/etc/systemd/system/nginx.service.d/prep-restart.conf"


@deploy("Web publication (nginx)")
def web(settings: DifusorSettings) -> None:
    """
    Configure nginx to serve the live cut, checked with ``nginx -t``; reload if changed.

    + settings: the validated difusor settings

    **Example:**

    .. code:: python

        from pyinfra.context import host
        from prep_iac.deploy.web import web
        from prep_iac.deploy.settings import settings_from_host

        web(settings=settings_from_host(host))
    """
    platform = platform_for(host)
    paths = platform.paths
    # nginx.conf below includes no sites-enabled/; the link only misleads readers.
    files.link(
        name="Debian's default site removed", path="/etc/nginx/sites-enabled/default", present=False
    )
    # nginx's group, inherited (setgid): a challenge an ACME client writes from an
    # admin's session with the hardened umask (027, applied to SSH sessions by
    # Debian 13's PAM) is still readable by nginx.
    files.directory(
        name="ACME HTTP-01 challenge directory",
        path=f"{ACME_WEBROOT}/.well-known/acme-challenge",
        user="root",
        group=paths.nginx_user,
        mode="2755",
    )
    config = validated_template(
        name="nginx.conf, checked with nginx -t",
        src="nginx.conf.j2",
        dest=paths.nginx_conf,
        validate="nginx -t -c {path}",
        nginx_user=paths.nginx_user,
        access_log=ACCESS_LOG,
        live=f"{settings.publication_root}/live",
        acme_webroot=ACME_WEBROOT,
        server_names=settings.server_names,
        frame_ancestors=settings.frame_ancestors,
        rate_per_second=settings.http_rate_per_second,
        burst=settings.http_burst,
        connections_per_source=settings.http_connections_per_source,
        data_max_age=DATA_MAX_AGE,
        shell_max_age=SHELL_MAX_AGE,
        tls=settings.tls,
        tls_certificate=settings.tls_certificate,
        tls_key=settings.tls_key,
        ha_health_port=HEALTH_PORT if settings.ha_address else None,
    )
    files.put(
        name=f"Access logs kept {settings.access_log_retention_days} days",
        src=rendered(
            "logrotate-nginx.j2",
            days=settings.access_log_retention_days,
            nginx_user=paths.nginx_user,
        ),
        dest=paths.nginx_logrotate,
    )
    restart = files.put(
        name="systemd restarts nginx when it dies",
        src=rendered("nginx-restart.conf.j2", restart_seconds=RESTART_SECONDS),
        dest=RESTART_DROP_IN,
    )
    systemd.daemon_reload(name="systemd reads nginx's drop-in", _if=restart.did_change)
    systemd.service(
        name="nginx running and enabled",
        service=platform.service("nginx"),
        running=True,
        enabled=True,
    )
    systemd.service(
        name="Reload nginx when its config changed",
        service=platform.service("nginx"),
        reloaded=True,
        _if=config.did_change,
    )
