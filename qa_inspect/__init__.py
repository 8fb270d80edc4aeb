"""qa_inspect: offline speech-analytics quality inspection for call centers."""
import logging

__version__ = "0.1.0"

logging.getLogger(__name__).addHandler(logging.NullHandler())
