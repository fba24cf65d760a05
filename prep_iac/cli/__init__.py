"""The ``prep-iac`` command line: thin click commands over the library."""
