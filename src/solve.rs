//! `mrkl solve`: the exact policy of an instance file (THEORY §1, D2, D5-D6).

use crate::error::{Error, Result};
use crate::instance::RawInstance;
use crate::policy::{
    Divergence, Regularizer, fkl_kkt_residual, fkl_objective, fkl_policy, rkl_objective,
    rkl_optimal_value,
};
use crate::spec;
use std::path::Path;

/// The exact RKL policy (or the FKL policy, root-found) of the instance in `path` for its
/// references and reward, with its objective per context and in total; for RKL also the
/// closed-form optimum (D2) and ln F, for FKL the normaliser Z~ and the KKT residual.
/// `weights` defaults to uniform.
pub fn solve(
    path: &Path,
    divergence: Divergence,
    weights: Option<Vec<f64>>,
    gamma: f64,
) -> Result<serde_json::Value> {
    let text = crate::fsio::read_text(path)?;
    let raw: RawInstance = serde_json::from_str(&text).map_err(|e| Error::parse(path, e))?;
    let inst = raw.check()?;
    let a = Args { gamma, weights };
    if !(a.gamma.is_finite() && a.gamma >= spec::GAMMA_RANGE.0 && a.gamma <= spec::GAMMA_RANGE.1) {
        return Err(Error::invalid(
            "--gamma",
            a.gamma,
            "a number in [1e-6, 1e6]",
        ));
    }
    let k = inst.k();
    let mut weights = a.weights.unwrap_or_else(|| vec![1.0 / k as f64; k]);
    if weights.len() != k {
        return Err(Error::invalid(
            "--weights (length)",
            weights.len(),
            format!("{k} weights, one per reference"),
        ));
    }
    crate::instance::check_simplex("--weights", &mut weights)?;
    if divergence == Divergence::Rkl {
        if let Some(x) = inst.empty_intersections(&weights).first() {
            return Err(Error::invalid(
                format!("references at context {x}"),
                "disjoint supports",
                "a response shared by every reference with positive weight (THEORY D4)",
            ));
        }
    }
    let (nx, ny) = (inst.contexts, inst.responses);
    let r = inst.true_reward();
    let reg = Regularizer::new(divergence, &inst.references, &weights, nx, ny);
    let mut pi = vec![0.0; nx * ny];
    reg.policy(&r, a.gamma, &mut pi);
    let mut contexts = vec![];
    let mut total = 0.0;
    for x in 0..nx {
        let refs: Vec<&[f64]> = (0..k).map(|i| inst.reference(i, x)).collect();
        let p = &pi[x * ny..(x + 1) * ny];
        let rr = &r[x * ny..(x + 1) * ny];
        let mut entry = serde_json::json!({ "x": x, "rho": inst.rho[x], "policy": p });
        let value = match divergence {
            Divergence::Rkl => {
                let mut lp = vec![0.0; ny];
                let ln_z = crate::policy::rkl_log_policy(
                    &reg.base[x * ny..(x + 1) * ny],
                    rr,
                    a.gamma,
                    &mut lp,
                );
                entry["optimal_value_closed_form"] =
                    serde_json::json!(rkl_optimal_value(reg.ln_f[x], ln_z, a.gamma));
                entry["ln_F"] = serde_json::json!(reg.ln_f[x]);
                rkl_objective(p, &refs, &weights, rr, a.gamma)
            }
            Divergence::Fkl => {
                let mut q = vec![0.0; ny];
                let m = &reg.base[x * ny..(x + 1) * ny];
                let root = fkl_policy(m, rr, a.gamma, &mut q);
                entry["normaliser"] = serde_json::json!(root.z(a.gamma));
                entry["kkt_residual"] =
                    serde_json::json!(fkl_kkt_residual(m, rr, a.gamma, &q, &root));
                fkl_objective(p, &refs, &weights, rr, a.gamma)
            }
        };
        entry["objective"] = serde_json::json!(value);
        total += inst.rho[x] * value;
        contexts.push(entry);
    }
    let out = serde_json::json!({
        "divergence": divergence,
        "gamma": a.gamma,
        "weights": weights,
        "objective": total,
        "contexts": contexts,
    });
    Ok(out)
}

struct Args {
    gamma: f64,
    weights: Option<Vec<f64>>,
}
