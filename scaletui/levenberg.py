"""Levenberg–Marquardt for a batch of small MLPs, each model with its own damping.

Adam stalls on the tiny least-squares problems of scaling-law sweeps long before the network's
approximation limit (docs/SCIENCE.md: optimisation error hides the law). LM solves the damped Gauss–Newton
system (JᵀJ + λ·D) δ = −Jᵀr for every model in one batched Cholesky, accepts the step where the model's
loss fell and adapts that model's λ: near a minimum it converges quadratically, which takes float64 nets
to the precision floor in hundreds of steps instead of tens of thousands.

Every model's parameters live in a row of one (models, P) matrix; models never share a number, so a
model trains the same alone or in a batch.
"""

from __future__ import annotations

import math

import torch

from scaletui.mlp import forward, output_jacobian

DAMPING_START = 1e-3
DAMPING_MIN, DAMPING_MAX = 1e-15, 1e10
DAMPING_DOWN, DAMPING_UP = 1 / 3, 4.0


class LevenbergMarquardt:
    """Full-batch LM over the models of one shard; :meth:`views` gives the weights as [W0, b0, W1, ...]."""

    def __init__(
        self,
        tensors: list[torch.Tensor],
        x: torch.Tensor,
        y: torch.Tensor,
        activation: str,
        sample_space: bool | None = None,
    ) -> None:
        self.shapes = [t.shape[1:] for t in tensors]
        models = tensors[0].shape[0]
        self.theta = torch.cat([t.reshape(models, -1) for t in tensors], dim=1)  # (models, P)
        self.x, self.y, self.activation = x, y, activation
        self.damping = torch.full((models,), DAMPING_START, dtype=self.theta.dtype, device=self.theta.device)
        self.accepted = torch.zeros(models, dtype=torch.long, device=self.theta.device)
        n, size = x.shape[0], self.theta.shape[1]
        # With fewer points than parameters the n×n form of the same system is the cheaper one.
        self.sample_space = n < size if sample_space is None else sample_space
        self.scale = self.theta.new_zeros(models, size)
        self.loss = self.theta.new_zeros(models)
        if self.sample_space:
            self.jac = self.theta.new_zeros(models, n, size)
            self.residual = self.theta.new_zeros(models, n)
            self.system = self.theta.new_zeros(models, n, n)
        else:
            self.gradient = self.theta.new_zeros(models, size)
            self.system = self.theta.new_zeros(models, size, size)
        self.stale = torch.ones(models, dtype=torch.bool, device=self.theta.device)  # linearisation to redo

    def views(self, theta: torch.Tensor | None = None) -> list[torch.Tensor]:
        """Each weight tensor as a (models, ...) view into the parameter rows."""
        theta = self.theta if theta is None else theta
        out, offset = [], 0
        for shape in self.shapes:
            n = math.prod(shape)
            out.append(theta[:, offset : offset + n].reshape(theta.shape[0], *shape))
            offset += n
        return out

    def state_dict(self) -> dict[str, torch.Tensor]:
        """Everything the next steps depend on: the weights, each model's damping and count of accepted steps,
        and the linearisation a model keeps while its steps are refused.

        The linearisation is kept rather than recomputed on restore: a batched matrix product rounds a row
        differently depending on which other rows share the batch, and only the models whose last step was
        accepted are linearised again, so a recomputed one would not be bit for bit the one it replaces.
        """
        cache = ("jac", "residual") if self.sample_space else ("gradient",)
        kept = ("theta", "damping", "accepted", "stale", "scale", "loss", "system", *cache)
        return {name: getattr(self, name) for name in kept}

    def load_state(self, state: dict[str, torch.Tensor]) -> None:
        for name, value in state.items():
            setattr(self, name, value.clone())

    def losses(self, theta: torch.Tensor | None = None) -> torch.Tensor:
        """Training MSE of every model, (models,)."""
        residual = forward(self.views(theta), self.x, self.activation) - self.y
        return (residual**2).mean(dim=-1)

    def _linearise(self, rows: torch.Tensor) -> None:
        """Store what the solve needs for the models in ``rows`` at their current weights: the loss, the
        Marquardt scale diag(JᵀJ)/n and either the P×P Gauss–Newton system or, when there are fewer
        training points than parameters, the n×n one it is equivalent to."""
        theta = self.theta[rows]
        n = self.x.shape[0]
        residual = forward(self.views(theta), self.x, self.activation) - self.y  # (k, n)
        jac = output_jacobian(self.views(theta), self.x, self.activation)  # (k, n, P)
        diag = (jac**2).sum(dim=1) / n
        # Floored so that a dead neuron's zero column is still damped.
        self.scale[rows] = diag + 1e-9 * diag.mean(dim=1, keepdim=True) + torch.finfo(diag.dtype).tiny
        self.loss[rows] = (residual**2).mean(dim=-1)
        if self.sample_space:
            self.jac[rows] = jac
            self.residual[rows] = residual
            self.system[rows] = torch.bmm(jac / self.scale[rows][:, None, :], jac.transpose(1, 2))  # J S⁻¹ Jᵀ
        else:
            self.system[rows] = torch.bmm(jac.transpose(1, 2), jac) / n  # JᵀJ / n
            self.gradient[rows] = (jac * residual[..., None]).sum(dim=1) / n  # Jᵀr / n

    def _solve(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The damped step of every model, δ = −(JᵀJ/n + λS)⁻¹ Jᵀr/n, and whether its system was solvable.

        With fewer points than parameters the same δ is −S⁻¹Jᵀ(JS⁻¹Jᵀ + nλI)⁻¹r, an n×n solve.
        """
        n = self.x.shape[0]
        damped = self.system.clone()
        if self.sample_space:
            damped.diagonal(dim1=1, dim2=2).add_(n * self.damping[:, None])
        else:
            damped.diagonal(dim1=1, dim2=2).add_(self.damping[:, None] * self.scale)
        factor, info = torch.linalg.cholesky_ex(damped)
        solvable = info == 0
        eye = torch.eye(factor.shape[-1], dtype=factor.dtype, device=factor.device)
        factor = torch.where(solvable[:, None, None], factor, eye)
        if self.sample_space:
            u = torch.cholesky_solve(self.residual[..., None], factor)  # (models, n, 1)
            return -(self.jac * u).sum(dim=1) / self.scale, solvable
        return -torch.cholesky_solve(self.gradient[..., None], factor)[..., 0], solvable

    @torch.no_grad()
    def step(self, alive: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """One damped Gauss–Newton step for every live model; returns the losses before it and which
        models are still alive (finite loss).

        A model whose last step was refused keeps its linearisation: only λ changed, so only the solve is
        repeated, which near convergence (many refusals) saves most of the work.
        """
        if self.stale.any():
            self._linearise(self.stale.nonzero().squeeze(1))
        loss = self.loss.clone()
        alive = alive & torch.isfinite(loss)
        delta, solvable = self._solve()
        candidate = self.theta + delta
        new_loss = self.losses(candidate)
        accept = alive & solvable & torch.isfinite(new_loss) & (new_loss < loss)
        self.theta = torch.where(accept[:, None], candidate, self.theta)
        self.damping = torch.where(accept, self.damping * DAMPING_DOWN, self.damping * DAMPING_UP)
        self.damping = self.damping.clamp(DAMPING_MIN, DAMPING_MAX)
        self.accepted += accept.long()
        self.stale = accept
        return torch.where(alive, loss, torch.zeros_like(loss)), alive
