"""Cartesian impedance (operational-space) controller of the twin: joint torques that pull the EE to a target pose.

tau = J^T Lambda (Kp e - Kd v) + nullspace posture term + gravity/Coriolis compensation, computed every physics
step (1 kHz). Lambda = (J M^-1 J^T)^-1 makes the gains act as accelerations, so one stiffness behaves alike over
the whole workspace. The pose error is clipped (like SERL's impedance controller clips its reference) so a far
target pulls with bounded force instead of flinging the arm; torques are clipped to the Panda's limits.
"""
from __future__ import annotations

import dataclasses

import mujoco
import numpy as np



@dataclasses.dataclass
class ImpedanceConfig:
    """Gains of the twin's Cartesian impedance controller (accelerations per unit error, 1/s^2)."""

    translational_stiffness: float = 400.0    # natural frequency 20 rad/s: settles a 3 cm step in ~0.25 s
    rotational_stiffness: float = 300.0
    damping_ratio: float = 1.0                # critically damped
    nullspace_stiffness: float = 10.0         # keeps the elbow near the start posture (7 joints, 6-D task)
    max_position_error_m: float = 0.05        # error clip: the pull towards a far target stays bounded
    max_rotation_error_rad: float = 0.5

    def __post_init__(self) -> None:
        for field in dataclasses.fields(self):
            value = float(getattr(self, field.name))
            if not (np.isfinite(value) and value > 0.0):
                raise ValueError(f"ImpedanceConfig.{field.name} must be a finite number > 0, got {value}")
            setattr(self, field.name, value)


class CartesianImpedanceController:
    """Computes arm torques for one MuJoCo model/data pair and one EE site."""

    def __init__(self, model: mujoco.MjModel, site: str, joints, config: ImpedanceConfig):
        self.model, self.config = model, config
        self.site_id = model.site(site).id
        self.dofs = np.array([model.joint(j).dofadr[0] for j in joints])
        self.qpos_idx = np.array([model.joint(j).qposadr[0] for j in joints])
        self.actuators = np.array([model.actuator(f"torq_j{i + 1}").id for i in range(len(joints))])
        self.torque_limit = model.actuator_ctrlrange[self.actuators, 1].copy()
        self.posture = np.zeros(len(joints))
        self._jac_full = np.zeros((6, model.nv))
        self._jac_minv = np.zeros((6, model.nv))
        self._posture_full = np.zeros(model.nv)
        self._mass_times = np.zeros(model.nv)
        self._force = np.zeros(6)
        self._quat, self._target_wxyz, self._rot_local = np.zeros(4), np.zeros(4), np.zeros(3)
        self._kp = np.array([config.translational_stiffness] * 3 + [config.rotational_stiffness] * 3)
        self._kd = 2.0 * config.damping_ratio * np.sqrt(self._kp)
        self._kn = config.nullspace_stiffness
        self._kn_d = 2.0 * np.sqrt(self._kn)

    def set_posture(self, q: np.ndarray) -> None:
        """Joint posture the null-space term pulls towards (the start configuration)."""
        self.posture = np.asarray(q, dtype=np.float64).copy()

    def torques(self, data: mujoco.MjData, target_position: np.ndarray, target_quaternion: np.ndarray) -> np.ndarray:
        """Arm torques (N m) for the current state and the target pose (position m, quaternion x, y, z, w)."""
        cfg, m = self.config, self.model
        # MuJoCo's own routines throughout: this runs 1000 times per simulated second, and small LAPACK calls
        # from numpy cost ~100 us each on a loaded CPU (BLAS threading), MuJoCo's take ~1 us.
        jac_full = self._jac_full
        mujoco.mj_jacSite(m, data, jac_full[:3], jac_full[3:], self.site_id)
        mujoco.mj_solveM(m, data, self._jac_minv, jac_full)            # J M^-1 (M symmetric), all dofs
        task_inv = self._jac_minv @ jac_full.T + 1e-6 * np.eye(6)      # damped: bounded near singularities
        mujoco.mju_cholFactor(task_inv, 0.0)

        mujoco.mju_mat2Quat(self._quat, data.site_xmat[self.site_id])
        x, y, z, w = target_quaternion
        self._target_wxyz[:] = (w, x, y, z)
        mujoco.mju_subQuat(self._rot_local, self._target_wxyz, self._quat)   # target = current * quat(local)
        rot_err = data.site_xmat[self.site_id].reshape(3, 3) @ self._rot_local
        pos_err = _clip(np.asarray(target_position) - data.site_xpos[self.site_id], cfg.max_position_error_m)
        rot_err = _clip(rot_err, cfg.max_rotation_error_rad)
        jac = jac_full[:, self.dofs]
        qvel = data.qvel[self.dofs]
        accel = self._kp * np.concatenate([pos_err, rot_err]) - self._kd * (jac @ qvel)
        mujoco.mju_cholSolve(self._force, task_inv, accel)              # Lambda a
        tau = jac.T @ self._force

        # Dynamically consistent null space, N^T M a = M a - J^T Lambda J a: posture torques never disturb the EE.
        self._posture_full[self.dofs] = self._kn * (self.posture - data.qpos[self.qpos_idx]) - self._kn_d * qvel
        mujoco.mj_mulM(m, data, self._mass_times, self._posture_full)
        mujoco.mju_cholSolve(self._force, task_inv, jac_full @ self._posture_full)
        tau += self._mass_times[self.dofs] - jac.T @ self._force
        tau += data.qfrc_bias[self.dofs]
        return np.clip(tau, -self.torque_limit, self.torque_limit)


def _clip(vector: np.ndarray, limit: float) -> np.ndarray:
    norm = float(np.linalg.norm(vector))
    return vector if norm <= limit else vector * (limit / norm)
