"""The facts of the machine that trains a run, recorded in its meta.json.

Its own module because it imports torch (for its version, threads and GPU name) and is called only
where training happens — the runner and a Ray worker — so the store, which readers import, stays free
of torch.
"""

from __future__ import annotations

import os
import platform
import socket
from typing import Any

import numpy as np
import scipy
import torch


def environment_facts(device: str, dtype: str) -> dict[str, Any]:
    """What a reader needs to judge or reproduce the numbers: versions, host, device."""
    facts: dict[str, Any] = {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "numpy": np.__version__,
        "scipy": scipy.__version__,
        "platform": platform.platform(),
        "host": socket.gethostname(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "device": device,
        "dtype": dtype,
    }
    if device.startswith("cuda") and torch.cuda.is_available():
        facts["cuda_device"] = torch.cuda.get_device_name(0)
        facts["cuda_version"] = torch.version.cuda
    return facts
