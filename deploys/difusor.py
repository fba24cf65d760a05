"""Provision a difusor host to the calls' spec.

    pyinfra -y inventories/<difusor>.py deploys/difusor.py

Settings come from group data and the inventory and are validated before any
host is touched. Packages come first (their config is written after), the
firewall once sshd and nginx are in their final state, and the file integrity
baseline last, of the host as deployed.
"""

from pyinfra.context import host

from prep_iac.deploy.baseline import baseline
from prep_iac.deploy.events import event_hook
from prep_iac.deploy.firewall import firewall
from prep_iac.deploy.ha import high_availability
from prep_iac.deploy.hardening import hardening
from prep_iac.deploy.hardware import hardware_check
from prep_iac.deploy.ids import ids
from prep_iac.deploy.integrity import integrity
from prep_iac.deploy.publication import publication
from prep_iac.deploy.settings import settings_from_host
from prep_iac.deploy.sftp import sftp_account
from prep_iac.deploy.ssh import ssh_hardening
from prep_iac.deploy.storage import storage
from prep_iac.deploy.ups import ups
from prep_iac.deploy.web import web

settings = settings_from_host(host)

hardware_check(settings=settings)
baseline(settings=settings)
event_hook(settings=settings)
hardening(settings=settings)
storage(settings=settings)
sftp_account(settings=settings)
publication(settings=settings)
ssh_hardening(settings=settings)
web(settings=settings)
ids(settings=settings)
ups(settings=settings)
firewall(settings=settings)
high_availability(settings=settings)
integrity(settings=settings)
