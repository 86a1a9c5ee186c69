"""Commands of the meshconform command line that stand on their own (the group and its core commands are in
meshconform.cli)."""
