"""Small helpers for code that must give the same answer on one process or many."""

from __future__ import annotations

from typing import Any

import torch


def gather_lists(items: list[Any]) -> list[Any]:
    """Concatenate a Python list across DDP ranks (rank order); the list itself when not
    distributed. Every rank must call it (it is a collective)."""
    if not (torch.distributed.is_available() and torch.distributed.is_initialized()):
        return items
    gathered: list[list[Any] | None] = [None] * torch.distributed.get_world_size()
    torch.distributed.all_gather_object(gathered, items)
    return [item for part in gathered for item in (part or [])]
