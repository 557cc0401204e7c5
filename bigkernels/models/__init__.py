"""Complete, trainable reference models. Each is built from torch modules and
then, with kernels=True (the default), handed to bigkernels.swap(); the
report is kept as `model.swap_report`. kernels=False gives the same
architecture and state_dict keys in plain torch."""
from .cnn import ResNet, SimpleCNN, resnet18, resnet34, resnet50
from .gpt import GPT
from .rnn import LSTMClassifier, LSTMLanguageModel
from .transformer import TransformerClassifier

__all__ = ["GPT", "LSTMClassifier", "LSTMLanguageModel", "ResNet", "SimpleCNN", "TransformerClassifier",
           "resnet18", "resnet34", "resnet50"]
