//! The Monte-Carlo engine. A spec expands into work units (cell, replication); each unit
//! owns the RNG stream (master seed, cell label, replication) and walks the whole n grid
//! with nested datasets: data -> reward MLE -> plug-in policy -> gap, at every n.
//! Units run in parallel with rayon and are collected in unit order, so results are
//! bit-identical for any thread count.

use crate::dpo;
use crate::estimation::{FitWorkspace, LinearFitter, finite_mle};
use crate::gap::{GapWorkspace, gaps, rkl_policy_loss};
use crate::instance::{Instance, RewardModel};
use crate::policy::{Regularizer, comparator_bases, log_escort, mixture, true_objective};
use crate::preference::{Sampler, WinCounts};
use crate::spec::{Cell, Estimator, Record, Sampling, Spec};
use crate::streams::stream;
use rayon::prelude::*;
use std::sync::Arc;

/// What one work unit measured along the n grid.
#[derive(Clone, Debug, PartialEq)]
pub struct UnitResult {
    /// The spec's quantity at each n.
    pub values: Vec<f64>,
    /// Newton iterations of the linear-class MLE at each n (0 for the finite class).
    pub iterations: Vec<u32>,
    /// Whether the linear-class MLE sat on the norm ball at each n.
    pub on_boundary: Vec<bool>,
    /// extras[s][j]: series s of [`Spec::series`] at the j-th n.
    pub extras: Vec<Vec<f64>>,
}

/// Raw per-replication results of one cell, indexed [n level][replication].
#[derive(Clone, Debug, PartialEq)]
pub struct CellRun {
    pub values: Vec<Vec<f64>>,
    pub iterations: Vec<Vec<u32>>,
    pub on_boundary: Vec<Vec<bool>>,
    /// extras[s][level][replication], series in the order of [`Spec::series`].
    pub extras: Vec<Vec<Vec<f64>>>,
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

/// What an instance needs that does not depend on the cell or the replication.
struct InstancePrep<'a> {
    inst: &'a Instance,
    r_star: Vec<f64>,
    fitter: Option<LinearFitter>,
}

/// Where a cell's data come from: comparisons drawn from mu by the spec's sampler, or the
/// spec's fixed design with Bradley-Terry outcomes under r* (docs/theory.md §2).
enum Data {
    Drawn(Sampler, crate::preference::SamplerKind),
    Fixed(crate::fixed_design::Schedule, Vec<f64>),
}

impl Data {
    /// Grows the nested dataset `counts` to n comparisons (n >= counts.n).
    fn grow<R: rand::Rng + ?Sized>(&self, counts: &mut WinCounts, n: u64, rng: &mut R) {
        match self {
            Data::Drawn(sampler, kind) => sampler.extend(*kind, counts, n - counts.n, rng),
            Data::Fixed(design, r_star) => design.grow(r_star, counts, n, rng),
        }
    }

    /// The sampler from mu (online rounds: checked specs with a fixed design have one round).
    fn drawn(&self) -> &Sampler {
        match self {
            Data::Drawn(sampler, _) => sampler,
            Data::Fixed(..) => unreachable!("checked: a fixed design has rounds = 1"),
        }
    }
}

/// What a cell needs that does not depend on the replication.
struct CellPrep {
    /// Index of the cell's instance in [`Prepared::instances`].
    instance: usize,
    data: Data,
    reg: Regularizer,
    /// The RKL comparators of THEORY §6 (recorded with `record = ["comparators"]`).
    comparators: Vec<Regularizer>,
    /// J(pi*) at each n level (recorded with `record = ["objective"]`).
    optimum: Vec<f64>,
}

/// One level of a unit's offline walk: the nested dataset at that n and the reward fit on
/// it (see [`Prepared::run_unit_observed`]).
pub struct LevelView<'a> {
    /// Index into the spec's n grid.
    pub level: usize,
    pub counts: &'a WinCounts,
    /// The linear MLE theta_hat (empty for the finite class).
    pub theta: &'a [f64],
    /// The fitted reward, flat X x Y.
    pub r_hat: &'a [f64],
    /// The cell's regulariser (its policy of `r_hat` is the plug-in policy).
    pub reg: &'a Regularizer,
    pub gamma: f64,
    pub iterations: u32,
    pub on_boundary: bool,
}

/// Everything that depends on the spec and cell but not on the replication.
pub struct Prepared<'a> {
    spec: &'a Spec,
    /// One per distinct instance of the cells (`Spec::instances`).
    instances: Vec<InstancePrep<'a>>,
    cells: Vec<CellPrep>,
    /// The extra series each unit records, in order (`Spec::series`).
    series: Vec<crate::spec::SeriesKind>,
    /// When every cell sees the same data (shared streams, one sampling policy for all
    /// cells, offline plug-in MLE), the fits along the grid of replication r are the same in
    /// every cell: computed once and kept here (see [`Prepared::shared_walk`]).
    /// Entries are dropped once every cell has used them (units are processed replication by
    /// replication then, see [`run_units`]), so the cache stays small.
    shared: Option<std::sync::Mutex<std::collections::HashMap<usize, (Arc<Vec<LevelFit>>, usize)>>>,
}

/// The reward fit at one level of the n grid.
struct LevelFit {
    r_hat: Vec<f64>,
    iterations: u32,
    on_boundary: bool,
}

/// The state of one reward fit along a sequence of growing datasets (warm starts).
struct FitState {
    counts: WinCounts,
    theta: Vec<f64>,
    r_hat: Vec<f64>,
    ws: FitWorkspace,
}

impl FitState {
    fn new(inst: &Instance) -> Self {
        FitState {
            counts: WinCounts::new(inst.contexts, inst.responses),
            theta: match &inst.reward {
                RewardModel::Linear(l) => vec![0.0; l.dim],
                _ => vec![],
            },
            r_hat: vec![0.0; inst.cells()],
            ws: FitWorkspace::default(),
        }
    }
}

impl<'a> Prepared<'a> {
    /// Precomputes samplers, regularisers and the MLE's feature differences.
    pub fn new(spec: &'a Spec) -> Self {
        let (distinct, cell_instance) = spec.instances();
        let instances: Vec<InstancePrep> = distinct
            .iter()
            .map(|inst| InstancePrep {
                inst,
                r_star: inst.true_reward(),
                fitter: match &inst.reward {
                    RewardModel::Linear(l) => Some(LinearFitter::new(
                        l,
                        inst.contexts,
                        inst.responses,
                        spec.options().mle_tolerance,
                    )),
                    _ => None,
                },
            })
            .collect();
        let mus: Vec<Vec<f64>> = spec
            .cells()
            .iter()
            .zip(cell_instance)
            .map(|(c, &i)| sampling_policy(&distinct[i], spec.sampling(), &c.weights))
            .collect();
        // One fit serves every cell when the cells share their data and the fit does not
        // depend on the cell (plug-in MLE, offline).
        let same_data =
            spec.shared_data() && spec.estimator() == Estimator::Mle && spec.rounds() == 1;
        let cells = spec
            .cells()
            .iter()
            .zip(mus)
            .zip(cell_instance)
            .map(|((c, mu), &instance)| {
                let InstancePrep { inst, r_star, .. } = &instances[instance];
                let data = match spec.design() {
                    Some(d) => Data::Fixed(d.clone(), r_star.clone()),
                    None => Data::Drawn(
                        Sampler::new(&inst.rho, &mu, r_star, inst.responses),
                        spec.sampler(),
                    ),
                };
                let reg = Regularizer::new(
                    spec.divergence(),
                    &inst.references,
                    &c.weights,
                    inst.contexts,
                    inst.responses,
                );
                let comparators = if spec.records().contains(&Record::Comparators) {
                    comparator_bases(inst, &c.weights, spec.options().mrpo_clip_eps)
                        .into_iter()
                        .map(|(_, r)| r)
                        .collect()
                } else {
                    vec![]
                };
                // J(pi*) at each n: the exact policy of this cell's regulariser, true reward.
                let optimum = if spec.records().contains(&Record::Objective) {
                    spec.ns()
                        .iter()
                        .map(|&n| {
                            true_objective(
                                inst,
                                &reg,
                                spec.divergence(),
                                &c.weights,
                                r_star,
                                c.gamma.at(n),
                            )
                        })
                        .collect()
                } else {
                    vec![]
                };
                CellPrep {
                    instance,
                    data,
                    reg,
                    comparators,
                    optimum,
                }
            })
            .collect();
        Prepared {
            spec,
            instances,
            cells,
            series: spec.series().into_iter().map(|d| d.kind).collect(),
            shared: same_data.then(Default::default),
        }
    }

    /// The fits along the grid of replication `rep` when every cell sees the same data:
    /// computed by the first unit of that replication to ask (cell 0's sampler, which equals
    /// every cell's; the shared stream), then reused. Any unit would compute bit-identical
    /// fits, so the result does not depend on which one comes first.
    fn shared_walk(&self, rep: usize) -> Option<Arc<Vec<LevelFit>>> {
        let cache = self.shared.as_ref()?;
        let cells = self.spec.cells().len();
        // Takes the walk of `rep` for one cell, dropping the entry after its last use.
        let take = |map: &mut std::collections::HashMap<usize, (Arc<Vec<LevelFit>>, usize)>| {
            let entry = map.get_mut(&rep)?;
            entry.1 += 1;
            let walk = entry.0.clone();
            if entry.1 == cells {
                map.remove(&rep);
            }
            Some(walk)
        };
        if let Some(w) = take(&mut cache.lock().expect("no panics while held")) {
            return Some(w);
        }
        let spec = self.spec;
        let mut rng = stream(spec.seed(), spec.stream_label(&spec.cells()[0]), rep as u64);
        let instance = self.cells[0].instance;
        let mut st = FitState::new(self.instances[instance].inst);
        let walk: Vec<LevelFit> = spec
            .ns()
            .iter()
            .map(|&n| {
                self.cells[0].data.grow(&mut st.counts, n, &mut rng);
                let (iterations, on_boundary) = self.fit_reward(instance, &mut st);
                LevelFit {
                    r_hat: st.r_hat.clone(),
                    iterations,
                    on_boundary,
                }
            })
            .collect();
        let mut map = cache.lock().expect("no panics while held");
        // Another unit of the same replication may have finished first: its walk is
        // bit-identical, either serves.
        map.entry(rep).or_insert((Arc::new(walk), 0));
        take(&mut map)
    }

    /// Fits the reward class of instance `instance` to `st.counts` (warm start at
    /// `st.theta`) into `st.r_hat`; returns (Newton iterations, on the norm ball).
    fn fit_reward(&self, instance: usize, st: &mut FitState) -> (u32, bool) {
        let prep = &self.instances[instance];
        match (&prep.inst.reward, &prep.fitter) {
            (RewardModel::Linear(l), Some(fitter)) => {
                let fit = fitter.fit(&st.counts, &st.theta, &mut st.ws);
                st.theta.copy_from_slice(&fit.theta);
                l.table(&st.theta, &mut st.r_hat);
                (fit.iterations, fit.on_boundary)
            }
            (RewardModel::Finite(f), _) => {
                st.r_hat
                    .copy_from_slice(&f.candidates[finite_mle(f, &st.counts)]);
                (0, false)
            }
            _ => unreachable!("checked specs have a linear or finite reward"),
        }
    }

    /// The DPO fit of the spec's class (THEORY §6), or the IPO fit (docs/theory.md §9.8,
    /// a closed form), on the data of `st`, warm-started (linear
    /// class) at `dpo_theta`, and for the linear class the identity residual
    /// max |pi_dpo - pi_plugin| against the plug-in policy of `st.r_hat` (NaN where the MLE
    /// is on the norm ball or DPO did not converge: the identity does not apply there).
    fn fit_dpo(
        &self,
        inst: &Instance,
        reg: &Regularizer,
        st: &FitState,
        gamma: f64,
        boundary: bool,
        dpo_theta: &mut [f64],
    ) -> (dpo::DpoFit, Option<f64>) {
        let spec = self.spec;
        let tol = spec.options().mle_tolerance;
        match (spec.estimator(), &inst.reward) {
            (Estimator::IpoLinear, RewardModel::Linear(l)) => {
                (crate::ipo::fit(reg, &st.counts, Some(l), gamma), None)
            }
            (Estimator::DpoLinear, RewardModel::Linear(l)) => {
                let fit = dpo::fit_linear(reg, &st.counts, l, gamma, 0.0, dpo_theta, tol);
                if fit.converged {
                    dpo_theta.copy_from_slice(&fit.theta);
                }
                let residual = if fit.converged && !boundary {
                    let mut pi = vec![0.0; inst.cells()];
                    reg.policy(&st.r_hat, gamma, &mut pi);
                    pi.iter()
                        .zip(&fit.policy)
                        .map(|(a, b)| (a - b).abs())
                        .fold(0.0, f64::max)
                } else {
                    f64::NAN
                };
                (fit, Some(residual))
            }
            (Estimator::DpoLinear | Estimator::IpoLinear, _) => {
                unreachable!("checked: dpo_linear and ipo_linear need the linear class")
            }
            (Estimator::IpoTabular, _) => (crate::ipo::fit(reg, &st.counts, None, gamma), None),
            _ => (
                dpo::fit_tabular(reg, &st.counts, gamma, spec.options().dpo_ridge, tol),
                None,
            ),
        }
    }

    /// Runs replication `rep` of cell `cell` along the whole n grid: the offline walk with
    /// nested datasets drawn from mu or from the fixed design's outcomes (stream `(seed,
    /// label, rep)`), then for an online spec
    /// the online runs (stream `(seed, label + "/online", rep)`, one fresh run per n).
    pub fn run_unit(&self, cell: usize, rep: usize) -> UnitResult {
        self.run_unit_observed(cell, rep, None)
    }

    /// [`Prepared::run_unit`], calling `observe` at every level of the offline walk with
    /// the data and the fit there (what `mrkl replay` shows). With an observer the fits are
    /// made in the unit itself, never taken from the shared cache: they are bit-identical
    /// (the cache holds the walk of the same stream), and the data are at hand.
    pub fn run_unit_observed(
        &self,
        cell: usize,
        rep: usize,
        mut observe: Option<&mut dyn FnMut(LevelView)>,
    ) -> UnitResult {
        let spec = self.spec;
        let c = &spec.cells()[cell];
        let prep = &self.cells[cell];
        let InstancePrep { inst, r_star, .. } = &self.instances[prep.instance];
        let reg = &prep.reg;
        let mut rng = stream(spec.seed(), spec.stream_label(c), rep as u64);
        let mut st = FitState::new(inst);
        let mut gap_ws = GapWorkspace::default();
        let levels = spec.ns().len();
        let series = self.series.len();
        let mut out = UnitResult {
            values: Vec::with_capacity(levels),
            iterations: Vec::with_capacity(levels),
            on_boundary: Vec::with_capacity(levels),
            extras: vec![Vec::with_capacity(levels); series],
        };
        let mut dpo_theta = st.theta.clone();
        let mut row = Vec::with_capacity(series);
        let shared = if observe.is_some() {
            None
        } else {
            self.shared_walk(rep)
        };
        for (j, &n) in spec.ns().iter().enumerate() {
            let (iterations, boundary) = match &shared {
                Some(walk) => {
                    st.r_hat.copy_from_slice(&walk[j].r_hat);
                    (walk[j].iterations, walk[j].on_boundary)
                }
                None => {
                    prep.data.grow(&mut st.counts, n, &mut rng);
                    self.fit_reward(prep.instance, &mut st)
                }
            };
            let gamma = c.gamma.at(n);
            if let Some(f) = observe.as_mut() {
                f(LevelView {
                    level: j,
                    counts: &st.counts,
                    theta: &st.theta,
                    r_hat: &st.r_hat,
                    reg,
                    gamma,
                    iterations,
                    on_boundary: boundary,
                });
            }
            let plugin = gaps(reg, &inst.rho, r_star, &st.r_hat, gamma, &mut gap_ws);
            // The fitted policy's gaps, and for DPO the identity residual.
            // Tabular DPO without ridge: whether this fit has a finite minimiser, and where
            // the policy goes if not (`dpo::limiting_support`).
            let mut no_minimiser = None;
            let (fitted, residual) = match spec.estimator() {
                Estimator::Mle => (plugin, None),
                Estimator::DpoTabular
                | Estimator::DpoLinear
                | Estimator::IpoTabular
                | Estimator::IpoLinear => {
                    let (fit, residual) =
                        self.fit_dpo(inst, reg, &st, gamma, boundary, &mut dpo_theta);
                    if spec.reports_no_minimiser() {
                        no_minimiser =
                            Some((fit.converged, dpo::limiting_support(reg, &st.counts)));
                    }
                    let g = gaps(
                        reg,
                        &inst.rho,
                        r_star,
                        &fit.implied_reward,
                        gamma,
                        &mut gap_ws,
                    );
                    (g, residual)
                }
            };
            row.clear();
            for kind in &self.series {
                use crate::spec::SeriesKind;
                row.push(match *kind {
                    SeriesKind::Objective => prep.optimum[j] - fitted.suboptimality,
                    SeriesKind::ExpectedReward => fitted.expected_reward,
                    SeriesKind::ComparatorLoss(i) => rkl_policy_loss(
                        reg,
                        &prep.comparators[i],
                        &inst.rho,
                        r_star,
                        &st.r_hat,
                        gamma,
                        &mut gap_ws,
                    ),
                    SeriesKind::Plugin => plugin.get(spec.quantity()),
                    SeriesKind::IdentityResidual => {
                        residual.expect("the linear DPO class records its identity residual")
                    }
                    SeriesKind::Offline => fitted.get(spec.quantity()),
                    SeriesKind::DpoNotConverged
                    | SeriesKind::DpoVanishing
                    | SeriesKind::DpoPointMass => {
                        let (converged, ls) = no_minimiser
                            .as_ref()
                            .expect("tabular DPO without ridge reports its minimiser");
                        match kind {
                            SeriesKind::DpoNotConverged => f64::from(u8::from(!converged)),
                            SeriesKind::DpoVanishing => ls.vanishing as f64,
                            _ => ls.point_mass_contexts as f64,
                        }
                    }
                });
            }
            if spec.rounds() == 1 {
                out.values.push(fitted.get(spec.quantity()));
                out.iterations.push(iterations);
                out.on_boundary.push(boundary);
            }
            for (s, &v) in out.extras.iter_mut().zip(&row) {
                s.push(v);
            }
        }
        if spec.rounds() > 1 {
            self.run_online(cell, rep, &mut out);
        }
        out
    }

    /// Online collection (issue "comparisons", part 4) at every n of the grid, from scratch:
    /// T = `rounds` rounds of n/T comparisons (the last takes the remainder); round 1 draws
    /// from the spec's mu, round t > 1 from the plug-in policy fitted on all data of rounds
    /// 1..t-1 (gamma = gamma(n) throughout). Records the final plug-in policy's quantity.
    fn run_online(&self, cell: usize, rep: usize, out: &mut UnitResult) {
        let spec = self.spec;
        let c = &spec.cells()[cell];
        let prep = &self.cells[cell];
        let InstancePrep { inst, r_star, .. } = &self.instances[prep.instance];
        let mut rng = stream(
            spec.seed(),
            &format!("{}/online", spec.stream_label(c)),
            rep as u64,
        );
        let mut gap_ws = GapWorkspace::default();
        let mut pi = vec![0.0; inst.cells()];
        let rounds = spec.rounds() as u64;
        for &n in spec.ns() {
            let mut st = FitState::new(inst);
            let gamma = c.gamma.at(n);
            let (mut iterations, mut boundary) = (0, false);
            for t in 0..rounds {
                let size = if t + 1 == rounds {
                    n - (n / rounds) * (rounds - 1)
                } else {
                    n / rounds
                };
                let current;
                let sampler = if t == 0 {
                    prep.data.drawn()
                } else {
                    prep.reg.policy(&st.r_hat, gamma, &mut pi);
                    current = Sampler::new(&inst.rho, &pi, r_star, inst.responses);
                    &current
                };
                sampler.extend(spec.sampler(), &mut st.counts, size, &mut rng);
                let (it, b) = self.fit_reward(prep.instance, &mut st);
                iterations += it;
                boundary = b;
            }
            let g = gaps(&prep.reg, &inst.rho, r_star, &st.r_hat, gamma, &mut gap_ws);
            out.values.push(g.get(spec.quantity()));
            out.iterations.push(iterations);
            out.on_boundary.push(boundary);
        }
    }
}

/// All work units of a spec in their canonical order: cell-major, then replication.
pub fn units(spec: &Spec) -> Vec<(usize, usize)> {
    (0..spec.cells().len())
        .flat_map(|c| (0..spec.replications()).map(move |r| (c, r)))
        .collect()
}

/// Runs every unit of the spec in parallel (rayon's current pool) and gathers them per cell.
/// `tick` is called once per finished unit (for a progress bar).
pub fn run(spec: &Spec, tick: &(dyn Fn() + Sync)) -> Vec<CellRun> {
    let all: Vec<usize> = (0..spec.cells().len() * spec.replications()).collect();
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
    // With shared fits, replication-major order lets each replication's cached walk be
    // dropped soon after it is made; the results go back to the order of `todo`.
    let mut order: Vec<usize> = (0..todo.len()).collect();
    if prepared.shared.is_some() {
        order.sort_by_key(|&k| (all[todo[k]].1, all[todo[k]].0));
    }
    let mut out: Vec<(usize, (usize, UnitResult))> = order
        .par_iter()
        .map(|&k| {
            let i = todo[k];
            let (c, r) = all[i];
            let u = prepared.run_unit(c, r);
            done(i, &u);
            (k, (i, u))
        })
        .collect();
    out.sort_by_key(|(k, _)| *k);
    out.into_iter().map(|(_, x)| x).collect()
}

/// Regroups unit results (in [`units`] order) into per-cell [n][replication] tables.
pub fn gather(spec: &Spec, results: &[UnitResult]) -> Vec<CellRun> {
    let levels = spec.ns().len();
    let series = spec.series().len();
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
        .chunks_exact(spec.replications())
        .map(|units| CellRun {
            values: by_level(units, levels, |u| &u.values),
            iterations: by_level(units, levels, |u| &u.iterations),
            on_boundary: by_level(units, levels, |u| &u.on_boundary),
            extras: (0..series)
                .map(|s| {
                    (0..levels)
                        .map(|j| units.iter().map(|u| u.extras[s][j]).collect())
                        .collect()
                })
                .collect(),
        })
        .collect()
}
