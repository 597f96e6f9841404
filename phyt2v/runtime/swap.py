"""The ``swap`` placement: only the role in use on the GPU, the others parked in CPU RAM.

``Swapper.wrap(role, backend)`` returns a proxy whose **device work** first makes ``role`` the active one: the
other roles' torch modules move to CPU, this role's to the GPU (plain ``.to()``, serialised by a lock held for the
call; modules shared between roles, like the captioner's VLM answering as the LLM, stay put). Device work is the
methods a backend declares in ``device_methods`` (default :data:`DEVICE_METHODS`: generate, generate_many, caption,
score, score_many, score_prepared, complete); every other method (``count_tokens``, ``tokens_per_word``, ...) and
attribute passes straight through: no move, no lock. A backend with no torch modules on the device (a remote or
llama.cpp LLM, a model pinned to the CPU) is not wrapped at all, so its calls never park the GPU models nor wait
for them. ``park_all()`` before a role loads leaves the GPU free for it. A generator under diffusers' own offload
(model/sequential hooks) is wrapped but never moved (``skip``): its hooks already keep it off the GPU when idle.
"""

from __future__ import annotations

import functools
import threading
import time
from typing import Any, Callable

# The methods that run a model (its weights must be on the device); a backend may declare its own ``device_methods``.
DEVICE_METHODS = ("generate", "generate_many", "caption", "score", "score_many", "score_prepared", "complete")


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
        self.move = move or (lambda module, target: module.to(target))  # how one module moves (tests record it)
        self._lock = threading.RLock()

    def on_device(self, backend: Any) -> bool:
        """The backend holds torch modules this swapper may move: not a remote or llama.cpp LLM (no modules),
        not a model pinned to the CPU (``device`` 'cpu' while this swapper serves a CUDA device)."""
        if not modules_of(backend):
            return False
        pinned = [str(getattr(o, "device", "") or "") for o in (backend, getattr(backend, "runtime", None)) if o]
        return not (str(self.device).startswith("cuda") and "cpu" in pinned)

    def register(self, role: str, backend: Any) -> None:
        with self._lock:
            if role in self.skip or not self.on_device(backend):
                self.roles.pop(role, None)
            else:
                self.roles[role] = modules_of(backend)
            # not marked active: a backend built from a cached copy may be parked (the LLM's VLM reused by the
            # captioner); its first call moves it in (a no-op move when it just loaded onto the device)
            if self.active == role:
                self.active = None

    def wrap(self, role: str, backend: Any) -> Any:
        """The backend as a proxy whose device work activates ``role`` first; the backend itself when it has
        nothing on the device (a skipped role, e.g. an offloaded generator, is wrapped: its device work still parks
        the other roles)."""
        self.register(role, backend)
        if role not in self.skip and role not in self.roles:
            return backend
        return _Swapped(backend, role, self, tuple(getattr(backend, "device_methods", DEVICE_METHODS)))

    def park_all(self) -> None:
        """Every registered module to CPU (before a new role loads onto the GPU)."""
        with self._lock:
            t0 = time.perf_counter()
            for mods in self.roles.values():
                for m in mods:
                    self.move(m, self.park)
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
                            self.move(m, self.park)
            for m in self.roles.get(role, []):
                self.move(m, self.device)
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
    """A backend whose device work (``methods``) activates its role first, holding the swap lock for the call;
    every other method and attribute passes through as it is."""

    def __init__(self, backend: Any, role: str, swapper: Swapper, methods: tuple[str, ...]):
        object.__setattr__(self, "_backend", backend)
        object.__setattr__(self, "_role", role)
        object.__setattr__(self, "_swapper", swapper)
        object.__setattr__(self, "_methods", frozenset(methods))

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._backend, name)
        if name not in self._methods or not callable(attr):
            return attr
        swapper, role = self._swapper, self._role

        @functools.wraps(attr)  # its signature stays visible (``inspect.signature``: the render reads it)
        def call(*args: Any, **kwargs: Any) -> Any:
            with swapper._lock:
                swapper.activate(role)
                return attr(*args, **kwargs)

        return call

    def __setattr__(self, name: str, value: Any) -> None:
        setattr(self._backend, name, value)

    def __repr__(self) -> str:
        return f"swapped({self._backend!r})"
