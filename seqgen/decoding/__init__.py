"""Search over any model that steps: logits processors, the searchers, the one GenerationConfig
and its resolution, and vocabulary shortlists. Nothing here knows of tasks."""
