"""What an LLM asks of the hardware, independent of any hardware.

``config`` reads a Hugging Face style ``config.json`` into a :class:`ModelConfig`;
``zoo/`` ships configs of common models; ``quant`` describes number formats and
quantization schemes; ``weights`` counts parameters and stored bytes; ``graph``
lists the operators of a prefill or decode step with shapes, MACs and bytes.
"""

from __future__ import annotations

from .config import ModelConfig, ModelConfigError, load_config, zoo_names
from .graph import Graph, Operator, build_graph
from .quant import QuantScheme, parse_scheme

__all__ = ["ModelConfig", "ModelConfigError", "load_config", "zoo_names", "Graph", "Operator", "build_graph",
           "QuantScheme", "parse_scheme"]
