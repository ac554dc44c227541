#!/usr/bin/env python3
"""NumPy/SciPy baseline for mrkl's T5.2 experiment (RKL sub-optimality, linear class).

This is the script a careful researcher would write today: for every sample size n and every
replication it draws n preference triples (vectorised over the n samples), fits the
Bradley-Terry reward by maximum likelihood on the n feature differences, forms the RKL plug-in
policy and measures its exact sub-optimality (THEORY.md §1-§3):

  instance  |X| = 20 contexts (uniform rho), |Y| = 10 responses, K = 2 references, each
            pi_i(.|x) ~ Dirichlet(1); r*(x, y) = <theta*, phi(x, y)>, phi uniform on the unit
            sphere of R^5, ||theta*|| = 0.8 B, B = 1. (Or mrkl's own instance: --instance.)
  data      x ~ rho; y, y' ~ mu(.|x) = g(.|x), the geometric escort with alpha = (1/2, 1/2);
            y preferred with probability sigmoid(r*(x,y) - r*(x,y')). Fresh data per n.
  estimator Bradley-Terry MLE, theta restricted to ||theta|| <= B (as mrkl): hand-written
            Newton with Armijo backtracking on the mean logistic loss (analytic gradient and
            Hessian, numpy.linalg.solve, stop at gradient max-norm <= 1e-10, mrkl's KKT
            tolerance); if the unconstrained optimum leaves the ball, the constrained problem
            is solved by scipy.optimize.minimize(method="SLSQP") with ||theta||^2 <= B^2.
            --fit newton-cg / lbfgs use scipy.optimize.minimize for the unconstrained step
            instead (slower; kept for comparison).
  policy    pi_hat(.|x) = g(.|x) exp(gamma r_hat(x,.)) / Z(x), in log space (log-sum-exp).
  gap       (1/gamma) sum_x rho(x) KL(pi_hat(.|x) || pi*(.|x)) (D3), exact, with the log-ratio
            formed from the reward difference.

Timing: wall time (time.perf_counter) of the R replications at each n, after imports and
instance set-up; seconds per replication = that time / R.

Usage: t5_2_numpy.py --n 1000 10000 100000 --replications 200 --seed 1 --threads 1 [--json]
"""

import argparse
import json
import os
import sys
import time


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--n", type=int, nargs="+", required=True, help="sample sizes")
    p.add_argument("--replications", type=int, default=200)
    p.add_argument("--seed", type=int, default=20250201)
    p.add_argument("--threads", type=int, default=None,
                   help="BLAS/OpenMP threads (sets the env vars before numpy is imported)")
    p.add_argument("--gamma", type=float, default=1.0)
    p.add_argument("--fit", choices=["newton", "newton-cg", "lbfgs"], default="newton",
                   help="unconstrained MLE solver (default: hand Newton)")
    p.add_argument("--instance", default=None,
                   help="load an instance.json written by mrkl instead of drawing one")
    p.add_argument("--json", action="store_true", help="print JSON lines instead of a table")
    return p.parse_args(argv)


ARGS = parse_args()
if ARGS.threads is not None:
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
                "VECLIB_MAXIMUM_THREADS", "NUMEXPR_NUM_THREADS"):
        os.environ[var] = str(ARGS.threads)

import numpy as np  # noqa: E402  (after the thread variables)
from scipy.optimize import minimize  # noqa: E402
from scipy.special import expit, log_expit, logsumexp  # noqa: E402

X, Y, K, D = 20, 10, 2, 5
B, THETA_NORM, CONCENTRATION = 1.0, 0.8, 1.0
ALPHA = np.array([0.5, 0.5])
TOL = 1e-10          # gradient max-norm of the mean logistic loss (mrkl's mle_tolerance)
MAX_ITER = 100


# ----------------------------------------------------------------------------- instance
def random_instance(rng):
    rho = np.full(X, 1.0 / X)
    refs = rng.dirichlet(np.full(Y, CONCENTRATION), size=(K, X))          # (K, X, Y)
    phi = rng.standard_normal((X, Y, D))
    phi /= np.linalg.norm(phi, axis=2, keepdims=True)                      # unit sphere
    theta = rng.standard_normal(D)
    theta *= THETA_NORM * B / np.linalg.norm(theta)
    return rho, refs, phi, theta, B


def load_instance(path):
    with open(path) as f:
        d = json.load(f)
    refs = np.asarray(d["references"], dtype=float)
    rho = np.asarray(d.get("rho", np.full(refs.shape[1], 1.0 / refs.shape[1])), dtype=float)
    rw = d["reward"]
    assert rw["class"] == "linear", "only the linear class is supported"
    return (rho, refs, np.asarray(rw["features"], dtype=float),
            np.asarray(rw["theta"], dtype=float), float(rw["bound"]))


class Problem:
    """Everything that does not depend on the replication."""

    def __init__(self, rho, refs, phi, theta_star, bound, gamma):
        self.rho, self.phi, self.theta_star, self.bound, self.gamma = rho, phi, theta_star, bound, gamma
        self.nx, self.ny = refs.shape[1], refs.shape[2]
        with np.errstate(divide="ignore"):
            log_refs = np.log(refs)
        log_g = np.tensordot(ALPHA, log_refs, axes=1)                      # (X, Y)
        self.log_g = log_g - logsumexp(log_g, axis=1, keepdims=True)       # geometric escort
        mu = np.exp(self.log_g)                                            # sampling policy
        self.cdf = np.cumsum(mu, axis=1)
        self.cdf[:, -1] = 1.0
        self.cdf_t = np.ascontiguousarray(self.cdf.T)                      # (Y, X)
        self.rho_cdf = np.cumsum(rho)
        self.rho_cdf[-1] = 1.0
        self.uniform_rho = np.allclose(rho, 1.0 / self.nx)
        self.r_star = phi @ theta_star                                     # (X, Y)
        self.lse_star = logsumexp(self.log_g + gamma * self.r_star, axis=1)
        self.r_flat = self.r_star.ravel()
        self.phi_t = np.ascontiguousarray(phi.reshape(-1, phi.shape[2]).T)    # (D, X*Y)

    # ------------------------------------------------------------------------ data
    def draw(self, rng, n):
        """n Bradley-Terry triples; returns the signed feature differences as a (D, n) array
        (one sample per column, so every row is contiguous), z = phi(x, winner) - phi(x, loser)."""
        ny = self.ny
        if self.uniform_rho:
            x = rng.integers(0, self.nx, size=n)
        else:
            x = np.searchsorted(self.rho_cdf, rng.random(n), side="right")
        cx = np.take(self.cdf_t, x, axis=1)                                # (Y, n): cdf of mu(.|x)
        u = rng.random((2, n))
        # Inverse CDF, y = #{k : cdf_k <= u}; accumulated over the Y - 1 rows (faster in
        # NumPy than a boolean .sum over an (n, Y) array, which casts to int64).
        y1 = (u[0] >= cx[0]).astype(np.intp)
        y2 = (u[1] >= cx[0]).astype(np.intp)
        for k in range(1, ny - 1):
            y1 += u[0] >= cx[k]
            y2 += u[1] >= cx[k]
        i1 = x * ny + y1                                                   # flat (x, y) index
        i2 = x * ny + y2
        p_win = expit(np.take(self.r_flat, i1) - np.take(self.r_flat, i2))
        sign = np.where(rng.random(n) < p_win, 1.0, -1.0)
        z = np.take(self.phi_t, i1, axis=1)
        z -= np.take(self.phi_t, i2, axis=1)
        z *= sign
        return z

    # ------------------------------------------------------------------------ MLE
    @staticmethod
    def loss(theta, z):
        return -np.mean(log_expit(theta @ z))

    @staticmethod
    def grad(theta, z):
        return -(z @ expit(-(theta @ z))) / z.shape[1]

    @staticmethod
    def hess(theta, z):
        m = theta @ z
        w = expit(m) * expit(-m)
        return (z * w) @ z.T / z.shape[1]

    def fit_newton(self, z):
        """Damped Newton on the mean logistic loss; z is (D, n); returns (theta, iterations)."""
        d, n = z.shape
        theta = np.zeros(d)
        m = np.zeros(n)
        f = np.log(2.0)
        for it in range(MAX_ITER):
            q = expit(-m)                                                  # 1 - sigma(m)
            g = -(z @ q) / n
            if np.max(np.abs(g)) <= TOL:
                return theta, it
            w = q * (1.0 - q)
            h = (z * w) @ z.T / n
            step = np.linalg.solve(h, -g)
            slope = g @ step
            if -slope <= 1e-12:
                # Quadratic region: the loss decrease (~ -slope / 2) is below the rounding of
                # f itself and cannot be checked; the full Newton step is the right one.
                theta_new = theta + step
                m_new = theta_new @ z
                f_new = f
            else:
                t = 1.0
                while True:                                                # Armijo
                    theta_new = theta + t * step
                    m_new = theta_new @ z
                    f_new = -np.mean(log_expit(m_new))
                    if f_new <= f + 1e-4 * t * slope or t < 1e-10:
                        break
                    t *= 0.5
            theta, m, f = theta_new, m_new, f_new
        return theta, MAX_ITER

    def fit_scipy(self, z, method):
        d = z.shape[0]
        if method == "newton-cg":
            res = minimize(self.loss, np.zeros(d), args=(z,), jac=self.grad, hess=self.hess,
                           method="Newton-CG", options={"xtol": 1e-12, "maxiter": MAX_ITER})
        else:
            res = minimize(self.loss, np.zeros(d), args=(z,), jac=self.grad, method="L-BFGS-B",
                           options={"gtol": TOL, "ftol": 1e-15, "maxiter": 10 * MAX_ITER})
        return res.x, res.nit

    def fit(self, z, method):
        theta, it = (self.fit_newton(z) if method == "newton" else self.fit_scipy(z, method))
        on_boundary = False
        if theta @ theta > self.bound ** 2:
            # Convex loss: the constrained optimum lies on the sphere ||theta|| = B.
            on_boundary = True
            b2 = self.bound ** 2
            x0 = theta * (self.bound / np.linalg.norm(theta))
            res = minimize(self.loss, x0, args=(z,), jac=self.grad, method="SLSQP",
                           constraints=[{"type": "ineq", "fun": lambda t: b2 - t @ t,
                                         "jac": lambda t: -2.0 * t}],
                           options={"ftol": 1e-14, "maxiter": MAX_ITER})
            theta, it = res.x, it + res.nit
        return theta, it, on_boundary

    # ------------------------------------------------------------------------ gap
    def rkl_suboptimality(self, theta_hat):
        """(1/gamma) sum_x rho(x) KL(pi_hat(.|x) || pi*(.|x)), exact (D3)."""
        gamma = self.gamma
        r_hat = self.phi @ theta_hat                                       # (X, Y)
        lse_hat = logsumexp(self.log_g + gamma * r_hat, axis=1)
        log_pi_hat = self.log_g + gamma * r_hat - lse_hat[:, None]
        pi_hat = np.exp(log_pi_hat)
        log_ratio = gamma * (r_hat - self.r_star) - (lse_hat - self.lse_star)[:, None]
        kl = np.sum(pi_hat * log_ratio, axis=1)
        return float(self.rho @ kl) / gamma


def main(args):
    if args.instance:
        inst = load_instance(args.instance)
    else:
        inst = random_instance(np.random.default_rng([args.seed, 0]))
    prob = Problem(*inst, gamma=args.gamma)
    rows = []
    for n in args.n:
        rng = np.random.default_rng([args.seed, 1, n])                     # fresh data per n
        gaps = np.empty(args.replications)
        iters = np.empty(args.replications)
        boundary = 0
        t0 = time.perf_counter()
        for r in range(args.replications):
            z = prob.draw(rng, n)
            theta_hat, it, on_b = prob.fit(z, args.fit)
            gaps[r] = prob.rkl_suboptimality(theta_hat)
            iters[r] = it
            boundary += on_b
        wall = time.perf_counter() - t0
        row = {
            "n": n, "replications": args.replications, "mean_gap": float(gaps.mean()),
            "std_err": float(gaps.std(ddof=1) / np.sqrt(len(gaps))) if len(gaps) > 1 else None,
            "wall_s": wall, "s_per_replication": wall / args.replications,
            "mle_iterations_mean": float(iters.mean()),
            "boundary_fraction": boundary / args.replications, "fit": args.fit,
            "threads": args.threads,
        }
        rows.append(row)
        if args.json:
            print(json.dumps(row), flush=True)
        else:
            if len(rows) == 1:
                print(f"{'n':>10}  {'mean gap':>11}  {'std err':>10}  {'wall s':>9}  "
                      f"{'s/replication':>13}  {'Newton it':>9}  {'on ball':>7}")
            print(f"{n:>10}  {row['mean_gap']:>11.4e}  {row['std_err'] or float('nan'):>10.2e}  "
                  f"{wall:>9.3f}  {row['s_per_replication']:>13.3e}  "
                  f"{row['mle_iterations_mean']:>9.2f}  {row['boundary_fraction']:>7.3f}",
                  flush=True)
    return rows


if __name__ == "__main__":
    main(ARGS)
    sys.exit(0)
