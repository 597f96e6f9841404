"""The ``swap`` placement: only the role in use on the GPU, the others parked in CPU RAM.

``Swapper.wrap(role, backend)`` returns a proxy whose public method calls first make ``role`` the
active one: the other roles' torch modules move to CPU, this role's to the GPU (plain ``.to()``,
serialised by a lock; modules shared between roles, like the captioner's VLM answering as the LLM,
stay put). ``park_all()`` before a role loads leaves the GPU free for it. A generator under diffusers'
own offload (model/sequential hooks) is not moved: its hooks already keep it off the GPU when idle.
"""

from __future__ import annotations

import inspect
import threading
import time
from typing import Any, Callable


def modules_of(backend: Any) -> list[Any]:
    """The torch modules holding a backend's weights: a diffusers pipeline's components, a
    transformers ``model``, or a runtime's ``model`` (VideoCon-Physics)."""
    import torch

    found: list[Any] = []
    pipe = getattr(backend, "pipe", None)
    if pipe is not None and hasattr(pipe, "components"):
        found += [m for m in pipe.components.values() if isinstance(m, torch.nn.Module)]
    for owner in (backend, getattr(backend, "runtime", None)):
        m = getattr(owner, "model", None) if owner is not None else None
        if isinstance(m, torch.nn.Module):
            found.append(m)
    out, seen = [], set()
    for m in found:
        if id(m) not in seen:
            seen.add(id(m))
            out.append(m)
    return out


class Swapper:
    def __init__(self, device: str, *, park: str = "cpu", skip: tuple[str, ...] = (),
                 move: Callable[[Any, str], None] | None = None):
        self.device, self.park, self.skip = device, park, set(skip)
        self.roles: dict[str, list[Any]] = {}
        self.active: str | None = None
        self.seconds = 0.0
        self.swaps = 0
        self._move = move or (lambda module, target: module.to(target))
        self._lock = threading.RLock()

    def register(self, role: str, backend: Any) -> None:
        if role not in self.skip:
            self.roles[role] = modules_of(backend)
        # not marked active: a backend built from a cached copy may be parked (the LLM's VLM reused by the
        # captioner); its first call moves it in (a no-op move when it just loaded onto the device)
        if self.active == role:
            self.active = None

    def wrap(self, role: str, backend: Any) -> Any:
        self.register(role, backend)
        return _Swapped(backend, role, self)

    def park_all(self) -> None:
        """Every registered module to CPU (before a new role loads onto the GPU)."""
        with self._lock:
            t0 = time.perf_counter()
            for mods in self.roles.values():
                for m in mods:
                    self._move(m, self.park)
            self.active = None
            self._done(t0)

    def activate(self, role: str) -> None:
        with self._lock:
            if role == self.active:
                return
            t0 = time.perf_counter()
            keep = {id(m) for m in self.roles.get(role, [])}
            for other, mods in self.roles.items():
                if other != role:
                    for m in mods:
                        if id(m) not in keep:
                            self._move(m, self.park)
            for m in self.roles.get(role, []):
                self._move(m, self.device)
            self.active = role
            self.swaps += 1
            self._done(t0)

    def _done(self, t0: float) -> None:
        if str(self.device).startswith("cuda"):
            import torch

            torch.cuda.synchronize()
            torch.cuda.empty_cache()
        self.seconds += time.perf_counter() - t0


class _Swapped:
    """A backend whose public method calls activate its role first; attributes pass through."""

    def __init__(self, backend: Any, role: str, swapper: Swapper):
        object.__setattr__(self, "_backend", backend)
        object.__setattr__(self, "_role", role)
        object.__setattr__(self, "_swapper", swapper)

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._backend, name)
        if name.startswith("_") or not inspect.ismethod(attr):  # modules and values pass through as they are
            return attr

        def call(*args: Any, **kwargs: Any) -> Any:
            with self._swapper._lock:
                self._swapper.activate(self._role)
                return attr(*args, **kwargs)

        return call

    def __setattr__(self, name: str, value: Any) -> None:
        setattr(self._backend, name, value)

    def __repr__(self) -> str:
        return f"swapped({self._backend!r})"
