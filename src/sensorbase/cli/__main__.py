"""`python -m sensorbase.cli`."""

from sensorbase.cli import main

main()
