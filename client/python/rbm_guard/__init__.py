"""rbm-guard for Python backends: guard RBM messages on Temporal with the service's own contract."""
from .client import GuardClient, TrackResult, connect, data_converter
from .codec import EncryptionCodec, PayloadDecryptionError, parse_keys
from .contract import CONTRACT, guard_workflow_id, normalize_agent_id
from .same_message import DifferentMessageError
from .track import ValidationError, parse_track_input

__all__ = [
    "CONTRACT",
    "DifferentMessageError",
    "EncryptionCodec",
    "GuardClient",
    "PayloadDecryptionError",
    "TrackResult",
    "ValidationError",
    "connect",
    "data_converter",
    "guard_workflow_id",
    "normalize_agent_id",
    "parse_keys",
    "parse_track_input",
]
