//! Judging: claims -> judgements (THEORY §4, §5, §7).
//!
//! - [`registry`]: the claim schema, the built-in registry and users' claims files;
//! - [`rate`]: exponents in n or gamma, bounds, sample complexity;
//! - [`exact`]: the exact checks of T5.1 and T6.1 on random instances;
//! - [`comparisons`]: F1, MR and the DPO identity;
//! - [`external`]: exact checks of neighbouring papers' claims (best-of-n);
//! - [`judgement`]: findings, verdicts and the saved `summary.json`.
//!
//! Judging reads results (`crate::result`) and nothing above it; rendering reads the saved
//! judgements and never judges again.

pub mod comparisons;
pub mod exact;
pub mod external;
pub mod judgement;
pub mod rate;
pub mod registry;

pub use comparisons::spearman;
pub use exact::EXACT_SEED;
pub use judgement::{
    Details, Finding, Judged, JudgedResult, Judgement, Measure, SUMMARY_FORMAT, Verdict,
    verdict_counts,
};
pub use rate::BOUND_TEST_LEVEL;
pub use registry::{Bound, Claim, ClaimKind, Formula, Registry, Variable, validate_specs};

use crate::result::ResultFile;

/// Judges every claim of the registry on `results` (each result names the claims it
/// measures); the exact, comparison and identity checks run with `seed` (`None`: not run,
/// so those claims are "not measured", as after `mrkl run`). Order: registry order, then
/// results order, then cells.
pub fn judge_all(registry: &Registry, results: &[ResultFile], seed: Option<u64>) -> Vec<Judgement> {
    use rayon::prelude::*;
    let naming = |id: &str| {
        let id = id.to_string();
        results.iter().filter(move |r| r.claims.contains(&id))
    };
    registry
        .claim
        .par_iter()
        .map(|claim| {
            let mut out = vec![];
            let why = match claim.kind {
                ClaimKind::Rate => {
                    for r in naming(&claim.id) {
                        out.extend(rate::judge_rate(claim, r));
                    }
                    "no spec in this run names it"
                }
                ClaimKind::SampleComplexity => {
                    let from = claim.from.clone().unwrap_or_default();
                    for r in naming(&from) {
                        for cell in &r.cells {
                            out.extend(rate::judge_sample_complexity(claim, r, cell));
                        }
                    }
                    "no linear-class spec in this run names the claim it follows from"
                }
                ClaimKind::Weights => {
                    for r in naming(&claim.id) {
                        out.push(comparisons::judge_weights(claim, r));
                    }
                    "no weight sweep in this run names it"
                }
                ClaimKind::Exact | ClaimKind::Comparison | ClaimKind::Identity => {
                    if let Some(seed) = seed {
                        out.push(match claim.kind {
                            ClaimKind::Exact => exact::judge_exact(claim, seed),
                            ClaimKind::Comparison => comparisons::judge_f1(claim, seed, results),
                            _ => comparisons::judge_identity(claim, seed, results),
                        });
                    }
                    "exact checks run with `mrkl check`"
                }
            };
            if out.is_empty() {
                out.push(Judgement::not_measured(claim, why));
            }
            out
        })
        .collect::<Vec<_>>()
        .into_iter()
        .flatten()
        .collect()
}
