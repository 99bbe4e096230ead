"""seqgen: one recurrent decoder, every generator (headlines, translation, captioning)."""
from .data.batch import Batch
from .decoding.generation import GenerationConfig
from .decoding.search import (BeamSearch, GreedySearch, Hypothesis, SampleSearch, build_searcher,
                              generate)
from .io.checkpoint import CheckpointError, load_checkpoint, make_checkpoint
from .io.loaded import LoadedModel
from .nn.decoder import DecoderConfig, RecurrentDecoder
from .nn.encoders import EncoderConfig
from .nn.model import EncoderDecoder, ModelConfig
from .nn.state import DecoderState
from .pipeline import Pipeline
from .results import Output, Result
from .training.config import TrainConfig
from .training.self_critical import SelfCritical, SelfCriticalConfig
from .training.trainer import Trainer
from .vocab import Vocab

__version__ = "0.1.0"

__all__ = [
    "Batch", "BeamSearch", "CheckpointError", "DecoderConfig", "DecoderState", "EncoderConfig",
    "EncoderDecoder", "GenerationConfig", "GreedySearch", "Hypothesis", "LoadedModel", "ModelConfig", "Output",
    "Pipeline", "RecurrentDecoder", "Result", "SampleSearch", "SelfCritical", "SelfCriticalConfig", "TrainConfig",
    "Trainer", "Vocab", "build_searcher", "generate", "load_checkpoint", "make_checkpoint",
]
