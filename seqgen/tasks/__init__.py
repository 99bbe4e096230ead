"""Task glue shared by the recipes and the CLI: prompting, inference and evaluation per task."""
