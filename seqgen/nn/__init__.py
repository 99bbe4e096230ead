"""The shared model parts: attention, encoders, the recurrent decoder, the encoder-decoder that
joins them, CNN backbones, int8 layers and ensembles. Nothing here knows of search or of tasks."""
