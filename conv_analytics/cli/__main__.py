"""`python -m conv_analytics.cli`: the same as the `conv-analytics` command."""

from conv_analytics.cli import main

main()
