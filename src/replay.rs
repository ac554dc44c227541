//! `mrkl replay`: one replication of one cell at one n, shown in full: the RNG stream, the
//! win counts, the fit, the plug-in and the exact policies and the gaps. It runs the very
//! code of a run ([`crate::engine::Prepared::run_unit_observed`]) on the replication's own
//! stream, so every number is bit-identical to the run's (`tests/replay.rs` checks the gaps
//! against `result.json`).

use crate::engine::{LevelView, Prepared};
use crate::error::{Error, Result};
use crate::preference::pairs;
use crate::spec::Spec;
use serde::Serialize;
use std::collections::BTreeMap;

/// The RNG stream of a unit: ChaCha8 keyed by (seed, label), stream number = replication.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct StreamId {
    pub seed: u64,
    pub label: String,
    pub replication: usize,
}

/// The win counts of one unordered response pair at one context (only pairs drawn at least
/// once are listed).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct PairWins {
    pub context: usize,
    pub a: usize,
    pub b: usize,
    /// Comparisons a won against b.
    pub a_won: u64,
    /// Comparisons b won against a.
    pub b_won: u64,
}

/// What `mrkl replay` prints (as JSON).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Replay {
    pub spec: String,
    pub cell: String,
    pub n: u64,
    pub gamma: f64,
    pub stream: StreamId,
    /// Comparisons with y = y' (no information; they count toward n).
    pub ties: u64,
    pub wins: Vec<PairWins>,
    /// The linear MLE (absent for the finite class).
    pub theta_hat: Option<Vec<f64>>,
    pub mle_iterations: u32,
    pub mle_on_boundary: bool,
    /// r_hat[x][y].
    pub reward_hat: Vec<Vec<f64>>,
    /// The plug-in policy of r_hat (the cell's divergence, weights and gamma), [x][y].
    pub policy_hat: Vec<Vec<f64>>,
    /// The exact policy of the true reward, [x][y].
    pub policy_star: Vec<Vec<f64>>,
    /// The spec's quantity (`<divergence>_<quantity>`, as in `raw.csv`) of the fitted
    /// policy: the plug-in policy, or the DPO fit for a DPO spec; for an online spec the
    /// final online policy (whose data are not the offline walk's shown here).
    pub quantity: String,
    pub value: f64,
    /// Every recorded series at this n, by name.
    pub series: BTreeMap<String, f64>,
}

/// Replays replication `replication` of the cell labelled `cell` at sample size `n` (one of
/// the spec's grid).
pub fn replay(spec: &Spec, cell: &str, replication: usize, n: u64) -> Result<Replay> {
    let labels = || {
        spec.cells()
            .iter()
            .map(|c| c.label.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    };
    let c = spec
        .cells()
        .iter()
        .position(|c| c.label == cell)
        .ok_or_else(|| Error::invalid("--cell", cell, format!("a cell label: {}", labels())))?;
    if replication >= spec.replications() {
        return Err(Error::invalid(
            "--replication",
            replication,
            format!(
                "0 ..= {} (the spec's replications - 1)",
                spec.replications() - 1
            ),
        ));
    }
    let level = spec.ns().iter().position(|&m| m == n).ok_or_else(|| {
        Error::invalid(
            "--n",
            n,
            format!(
                "a sample size of the spec's grid: {}",
                spec.ns()
                    .iter()
                    .map(u64::to_string)
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        )
    })?;
    let inst = spec.instance_of(c);
    let ny = inst.responses;
    let table = |flat: &[f64]| flat.chunks_exact(ny).map(<[f64]>::to_vec).collect();
    let prepared = Prepared::new(spec);
    let mut seen = None;
    let mut observe = |v: LevelView| {
        if v.level != level {
            return;
        }
        let mut pi_hat = vec![0.0; inst.cells()];
        v.reg.policy(v.r_hat, v.gamma, &mut pi_hat);
        let mut pi_star = vec![0.0; inst.cells()];
        v.reg.policy(&inst.true_reward(), v.gamma, &mut pi_star);
        let p = pairs(ny);
        let wins = v
            .counts
            .wins
            .iter()
            .enumerate()
            .filter(|(_, w)| w[0] + w[1] > 0)
            .map(|(i, w)| PairWins {
                context: i / p.len(),
                a: p[i % p.len()].0,
                b: p[i % p.len()].1,
                a_won: w[0],
                b_won: w[1],
            })
            .collect();
        seen = Some(Replay {
            spec: spec.name().clone(),
            cell: cell.to_string(),
            n,
            gamma: v.gamma,
            stream: StreamId {
                seed: spec.seed(),
                label: spec.stream_label(&spec.cells()[c]).to_string(),
                replication,
            },
            ties: v.counts.ties,
            wins,
            theta_hat: (!v.theta.is_empty()).then(|| v.theta.to_vec()),
            mle_iterations: v.iterations,
            mle_on_boundary: v.on_boundary,
            reward_hat: table(v.r_hat),
            policy_hat: table(&pi_hat),
            policy_star: table(&pi_star),
            quantity: crate::tidy::quantity_name(spec.divergence(), spec.quantity()),
            value: f64::NAN,
            series: BTreeMap::new(),
        });
    };
    let unit = prepared.run_unit_observed(c, replication, Some(&mut observe));
    let mut out = seen.expect("the walk visits every level");
    out.value = unit.values[level];
    out.series = spec
        .series()
        .iter()
        .zip(&unit.extras)
        .map(|(d, row)| (d.name.clone(), row[level]))
        .collect();
    Ok(out)
}
