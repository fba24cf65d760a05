"""pyinfra operations the difusor deploy needs and pyinfra lacks, one module per tool."""
