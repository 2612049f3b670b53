"""`mosaico experiment`: the program on the local testbed with real packets."""
