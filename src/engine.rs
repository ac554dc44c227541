//! The Monte-Carlo engine. A spec expands into work units (cell, replication); each unit
//! owns the RNG stream (master seed, cell label, replication) and walks the whole n grid
//! with nested datasets: data -> reward MLE -> plug-in policy -> gap, at every n.
//! Units run in parallel with rayon and are collected in unit order, so results are
//! bit-identical for any thread count.

use crate::estimation::{FitWorkspace, LinearFitter, finite_mle};
use crate::gap::{GapWorkspace, gaps};
use crate::instance::{Instance, RewardModel};
use crate::policy::{Regularizer, log_escort, mixture};
use crate::preference::{Sampler, WinCounts};
use crate::spec::{Cell, Sampling, Spec};
use crate::streams::stream;
use rayon::prelude::*;

/// What one work unit measured along the n grid.
#[derive(Clone, Debug, PartialEq)]
pub struct UnitResult {
    /// The spec's quantity at each n.
    pub values: Vec<f64>,
    /// Newton iterations of the linear-class MLE at each n (0 for the finite class).
    pub iterations: Vec<u32>,
    /// Whether the linear-class MLE sat on the norm ball at each n.
    pub on_boundary: Vec<bool>,
}

/// Raw per-replication results of one cell, indexed [n level][replication].
#[derive(Clone, Debug, PartialEq)]
pub struct CellRun {
    pub values: Vec<Vec<f64>>,
    pub iterations: Vec<Vec<u32>>,
    pub on_boundary: Vec<Vec<bool>>,
}

/// The identity of a work unit: `<cell label>/<replication>`.
pub fn unit_id(cell: &Cell, replication: usize) -> String {
    format!("{}/{}", cell.label, replication)
}

/// The sampling distribution mu (flat X x Y) for a cell [ours: THEORY §2].
pub fn sampling_policy(instance: &Instance, sampling: Sampling, weights: &[f64]) -> Vec<f64> {
    let (nx, ny) = (instance.contexts, instance.responses);
    let mut mu = vec![0.0; nx * ny];
    for x in 0..nx {
        let refs: Vec<&[f64]> = (0..instance.k())
            .map(|i| instance.reference(i, x))
            .collect();
        let out = &mut mu[x * ny..(x + 1) * ny];
        match sampling {
            Sampling::Geometric => {
                log_escort(&refs, weights, out);
                out.iter_mut().for_each(|v| *v = v.exp());
            }
            Sampling::Arithmetic => mixture(&refs, weights, out),
            Sampling::Reference(i) => out.copy_from_slice(refs[i]),
            Sampling::Uniform => out.iter_mut().for_each(|v| *v = 1.0 / ny as f64),
        }
    }
    mu
}

/// Everything that depends on the spec and cell but not on the replication.
pub struct Prepared<'a> {
    spec: &'a Spec,
    r_star: Vec<f64>,
    fitter: Option<LinearFitter>,
    cells: Vec<(Sampler, Regularizer)>,
}

impl<'a> Prepared<'a> {
    /// Precomputes samplers, regularisers and the MLE's feature differences.
    pub fn new(spec: &'a Spec) -> Self {
        let inst = &spec.instance;
        let r_star = inst.true_reward();
        let fitter = match &inst.reward {
            RewardModel::Linear(l) => Some(LinearFitter::new(
                l,
                inst.contexts,
                inst.responses,
                spec.options.mle_tolerance,
            )),
            _ => None,
        };
        let cells = spec
            .cells
            .iter()
            .map(|c| {
                let mu = sampling_policy(inst, spec.sampling, &c.weights);
                let sampler = Sampler::new(&inst.rho, &mu, &r_star, inst.responses);
                let reg = Regularizer::new(
                    spec.divergence,
                    &inst.references,
                    &c.weights,
                    inst.contexts,
                    inst.responses,
                );
                (sampler, reg)
            })
            .collect();
        Prepared {
            spec,
            r_star,
            fitter,
            cells,
        }
    }

    /// Runs replication `rep` of cell `cell` along the whole n grid.
    pub fn run_unit(&self, cell: usize, rep: usize) -> UnitResult {
        let spec = self.spec;
        let inst = &spec.instance;
        let c = &spec.cells[cell];
        let (sampler, reg) = &self.cells[cell];
        let mut rng = stream(spec.seed, &c.label, rep as u64);
        let mut counts = WinCounts::new(inst.contexts, inst.responses);
        let mut r_hat = vec![0.0; inst.cells()];
        let mut fit_ws = FitWorkspace::default();
        let mut gap_ws = GapWorkspace::default();
        let mut theta = match &inst.reward {
            RewardModel::Linear(l) => vec![0.0; l.dim],
            _ => vec![],
        };
        let levels = spec.ns.len();
        let mut out = UnitResult {
            values: Vec::with_capacity(levels),
            iterations: Vec::with_capacity(levels),
            on_boundary: Vec::with_capacity(levels),
        };
        for &n in &spec.ns {
            let extra = n - counts.n;
            sampler.extend(spec.sampler, &mut counts, extra, &mut rng);
            let (iterations, boundary) = match (&inst.reward, &self.fitter) {
                (RewardModel::Linear(l), Some(fitter)) => {
                    let fit = fitter.fit(&counts, &theta, &mut fit_ws);
                    theta.copy_from_slice(&fit.theta);
                    l.table(&theta, &mut r_hat);
                    (fit.iterations, fit.on_boundary)
                }
                (RewardModel::Finite(f), _) => {
                    r_hat.copy_from_slice(&f.candidates[finite_mle(f, &counts)]);
                    (0, false)
                }
                _ => unreachable!("checked specs have a linear or finite reward"),
            };
            let g = gaps(
                reg,
                &inst.rho,
                &self.r_star,
                &r_hat,
                c.gamma.at(n),
                &mut gap_ws,
            );
            out.values.push(g.get(spec.quantity));
            out.iterations.push(iterations);
            out.on_boundary.push(boundary);
        }
        out
    }
}

/// All work units of a spec in their canonical order: cell-major, then replication.
pub fn units(spec: &Spec) -> Vec<(usize, usize)> {
    (0..spec.cells.len())
        .flat_map(|c| (0..spec.replications).map(move |r| (c, r)))
        .collect()
}

/// Runs every unit of the spec in parallel (rayon's current pool) and gathers them per cell.
/// `tick` is called once per finished unit (for a progress bar).
pub fn run(spec: &Spec, tick: &(dyn Fn() + Sync)) -> Vec<CellRun> {
    let all: Vec<usize> = (0..spec.cells.len() * spec.replications).collect();
    let results: Vec<UnitResult> = run_units(spec, &all, &|_, _| tick())
        .into_iter()
        .map(|(_, u)| u)
        .collect();
    gather(spec, &results)
}

/// Runs the units with the given indices (into [`units`] order) in parallel; `done` is
/// called from the worker as each unit finishes (journal, progress). Returns them in the
/// order of `todo`, whatever the scheduling.
pub fn run_units(
    spec: &Spec,
    todo: &[usize],
    done: &(dyn Fn(usize, &UnitResult) + Sync),
) -> Vec<(usize, UnitResult)> {
    let prepared = Prepared::new(spec);
    let all = units(spec);
    todo.par_iter()
        .map(|&i| {
            let (c, r) = all[i];
            let u = prepared.run_unit(c, r);
            done(i, &u);
            (i, u)
        })
        .collect()
}

/// Regroups unit results (in [`units`] order) into per-cell [n][replication] tables.
pub fn gather(spec: &Spec, results: &[UnitResult]) -> Vec<CellRun> {
    let levels = spec.ns.len();
    /// [unit][level] -> [level][unit] for one field of the units of a cell.
    fn by_level<T: Copy>(
        units: &[UnitResult],
        levels: usize,
        field: fn(&UnitResult) -> &[T],
    ) -> Vec<Vec<T>> {
        (0..levels)
            .map(|j| units.iter().map(|u| field(u)[j]).collect())
            .collect()
    }
    results
        .chunks_exact(spec.replications)
        .map(|units| CellRun {
            values: by_level(units, levels, |u| &u.values),
            iterations: by_level(units, levels, |u| &u.iterations),
            on_boundary: by_level(units, levels, |u| &u.on_boundary),
        })
        .collect()
}
