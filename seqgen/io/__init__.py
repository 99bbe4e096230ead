"""Reading and writing what seqgen keeps: configs and their overrides, files written atomically,
the checkpoint format, rebuilding a model from a checkpoint, and exporting a model to ship."""
