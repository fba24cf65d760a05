"""``python -m prep_iac.cli`` runs the prep-iac command."""

from prep_iac.cli.main import main

main()
