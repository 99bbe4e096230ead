"""The summarization task: its data module, inference adapter and spec, found through the registry."""
