//! The linear-class Bradley-Terry MLE (docs/theory.md §2) through its public API: the result
//! does not depend on the start (the constrained MLE is unique for data that identify theta),
//! a start outside the norm ball is first brought back onto it, and a start at the solution
//! costs no iteration (the gradient test comes first, `newton` step 1).

use mrkl::estimation::{DEFAULT_GRADIENT_TOLERANCE, FitWorkspace, LinearFitter};
use mrkl::instance::{GeneratorParams, GeneratorReward, RewardModel, generate};
use mrkl::newton::MAX_ITERATIONS;
use mrkl::preference::{Sampler, SamplerKind, WinCounts};
use mrkl::streams::stream;

#[test]
fn the_fit_is_independent_of_the_start_and_clips_far_starts() {
    let p = GeneratorParams {
        contexts: 5,
        responses: 4,
        references: 1,
        concentration: 2.0,
        zero_fraction: 0.0,
        context_concentration: None,
        reward: GeneratorReward::Linear {
            dim: 3,
            bound: 1.0,
            theta_norm: 0.5,
        },
        family: Default::default(),
    };
    let inst = generate(&p, &mut stream(21, "linear-mle", 0));
    let RewardModel::Linear(lin) = &inst.reward else {
        unreachable!()
    };
    let fitter = LinearFitter::new(
        lin,
        inst.contexts,
        inst.responses,
        DEFAULT_GRADIENT_TOLERANCE,
    );
    let sampler = Sampler::new(
        &inst.rho,
        &inst.references[0],
        &inst.true_reward(),
        inst.responses,
    );
    let mut counts = WinCounts::new(inst.contexts, inst.responses);
    sampler.extend(
        SamplerKind::Counts,
        &mut counts,
        200_000,
        &mut stream(21, "data", 0),
    );
    let mut ws = FitWorkspace::default();
    let base = fitter.fit(&counts, &[0.0; 3], &mut ws);
    // theta* has norm 0.5 and the MLE error is O(n^-1/2) ~ 1e-2: the solution is interior.
    assert!(!base.on_boundary && base.lambda == 0.0, "{base:?}");
    assert!(base.kkt_residual <= DEFAULT_GRADIENT_TOLERANCE);
    assert!(
        base.iterations > 0 && base.iterations < MAX_ITERATIONS,
        "{base:?}"
    );
    // Warm start at the solution: the gradient test passes at once.
    let warm = fitter.fit(&counts, &base.theta, &mut ws);
    assert_eq!(warm.iterations, 0, "{warm:?}");
    assert_eq!(warm.theta, base.theta);
    // Starts outside the ball (norms 3 and 5000, beyond the runaway threshold 1e3 B) are
    // scaled onto the sphere ||theta|| = B first: the interior attempt then converges (fewer
    // iterations than the cap a failed attempt is charged) to the same MLE.
    for start in [[3.0, 0.0, 0.0], [0.0, -3000.0, 4000.0]] {
        let fit = fitter.fit(&counts, &start, &mut ws);
        assert!(
            !fit.on_boundary && fit.iterations < MAX_ITERATIONS,
            "{start:?}: {fit:?}"
        );
        for (a, b) in fit.theta.iter().zip(&base.theta) {
            assert!((a - b).abs() < 1e-8, "{start:?}: {fit:?} vs {base:?}");
        }
    }
}
