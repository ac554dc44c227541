//! Bradley-Terry preference data (THEORY §2). A dataset of size n is summarised, without
//! loss for any reward class, by its win counts per context and unordered response pair.
//! Two samplers produce the same distribution of counts:
//! - [`Sampler::extend_per_sample`] draws the n triples one by one (x ~ rho, y, y' ~ mu,
//!   label ~ Bernoulli(sigma(r*(y) - r*(y')))): O(n);
//! - [`Sampler::extend_counts`] draws the counts directly as a multinomial over the cells
//!   (sequential conditional binomials), then splits each pair's count into wins by a
//!   binomial: O(|X| |Y|^2), whatever n.
//! Both add to existing counts, so nested datasets along an n grid share their samples
//! (common random numbers across n).

use crate::binomial::{Draw, binomial};
use crate::numerics::sigmoid;
use rand::{Rng, RngExt};
use serde::{Deserialize, Serialize};

/// Win counts: `wins[x * pairs + p] = [#(a beat b), #(b beat a)]` for the p-th unordered pair
/// (a, b), a < b, of context x; `ties` counts the draws with y = y' (no information, but they
/// count toward n).
#[derive(Clone, Debug, PartialEq)]
pub struct WinCounts {
    pub contexts: usize,
    pub responses: usize,
    pub wins: Vec<[u64; 2]>,
    pub ties: u64,
    pub n: u64,
}

/// The unordered pairs (a, b), a < b, of responses, in the order used by [`WinCounts`].
pub fn pairs(responses: usize) -> Vec<(usize, usize)> {
    (0..responses)
        .flat_map(|a| (a + 1..responses).map(move |b| (a, b)))
        .collect()
}

impl WinCounts {
    /// An empty dataset.
    pub fn new(contexts: usize, responses: usize) -> Self {
        let p = responses * responses.saturating_sub(1) / 2;
        WinCounts {
            contexts,
            responses,
            wins: vec![[0, 0]; contexts * p],
            ties: 0,
            n: 0,
        }
    }

    /// Number of unordered pairs per context.
    pub fn pairs_per_context(&self) -> usize {
        self.responses * self.responses.saturating_sub(1) / 2
    }

    /// Empties the dataset, keeping its buffers.
    pub fn clear(&mut self) {
        self.wins.iter_mut().for_each(|w| *w = [0, 0]);
        self.ties = 0;
        self.n = 0;
    }

    /// Bradley-Terry log-likelihood of a reward table:
    /// sum_{x, a<b} W(a>b) ln sigma(r(a) - r(b)) + W(b>a) ln sigma(r(b) - r(a)).
    pub fn log_likelihood(&self, r: &[f64]) -> f64 {
        // With ln sigma(-t) = ln sigma(t) - t, each pair costs one logarithm:
        // W(a>b) ln sigma(t) + W(b>a) ln sigma(-t) = N ln sigma(t) - W(b>a) t, t = r(a) - r(b).
        let ny = self.responses;
        let mut ll = 0.0;
        let mut cell = self.wins.iter();
        for row in r.chunks_exact(ny).take(self.contexts) {
            for a in 0..ny {
                for b in a + 1..ny {
                    let [wa, wb] = *cell.next().expect("one cell per pair");
                    if wa + wb > 0 {
                        let t = row[a] - row[b];
                        ll += (wa + wb) as f64 * crate::numerics::ln_sigmoid(t) - wb as f64 * t;
                    }
                }
            }
        }
        ll
    }
}

/// Which distribution mu draws the two responses of a comparison (THEORY §2) [ours].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SamplerKind {
    /// Exact multinomial counts: cost independent of n.
    Counts,
    /// One draw per triple: cost O(n); the reference the count sampler is tested against.
    PerSample,
    /// The comparisons given in the spec (`experiment.design`), only their outcomes drawn
    /// (`fixed_design::Schedule::grow`): no mu.
    FixedDesign,
}

impl SamplerKind {
    /// The spelling used in specs and results.
    pub fn label(self) -> &'static str {
        match self {
            SamplerKind::Counts => "counts",
            SamplerKind::PerSample => "per_sample",
            SamplerKind::FixedDesign => "fixed_design",
        }
    }
}

/// Sampling distributions and Bradley-Terry probabilities precomputed for one instance and
/// one mu: the conditional cell probabilities of the sequential-binomial scheme and the
/// cumulative tables of the per-sample scheme.
#[derive(Clone, Debug)]
pub struct Sampler {
    contexts: usize,
    responses: usize,
    pairs: Vec<(usize, usize)>,
    /// P(context x | context >= x) for the sequential split of n over contexts.
    context_conditional: Vec<f64>,
    /// For each context, P(cell k | cell >= k) over its cells: the pairs in order, then the tie cell.
    cell_conditional: Vec<f64>,
    /// sigma(r*(a) - r*(b)) per (x, pair).
    win_probability: Vec<f64>,
    /// Cumulative rho and cumulative mu(.|x) for the per-sample scheme.
    rho_cdf: Vec<f64>,
    mu_cdf: Vec<f64>,
    /// r* (per-sample labels).
    reward: Vec<f64>,
}

/// Turns probabilities p_0..p_{k-1} (summing to ~1) into the conditional probabilities
/// p_j / sum_{i >= j} p_i used by sequential binomial sampling, with suffix sums computed
/// from the back (no cancellation) and the last entry exactly 1.
fn conditionals(p: &[f64]) -> Vec<f64> {
    let mut out = vec![0.0; p.len()];
    let mut suffix = 0.0;
    for j in (0..p.len()).rev() {
        suffix += p[j];
        out[j] = if suffix > 0.0 {
            (p[j] / suffix).clamp(0.0, 1.0)
        } else {
            0.0
        };
    }
    if let Some(last) = out.last_mut() {
        *last = 1.0;
    }
    out
}

fn cdf(p: &[f64]) -> Vec<f64> {
    let mut acc = 0.0;
    let mut out: Vec<f64> = p
        .iter()
        .map(|v| {
            acc += v;
            acc
        })
        .collect();
    if let Some(last) = out.last_mut() {
        *last = f64::INFINITY; // u < 1 always lands in range despite rounding
    }
    out
}

fn draw(cdf: &[f64], u: f64) -> usize {
    cdf.partition_point(|&c| c <= u)
}

impl Sampler {
    /// Precomputes the sampler for context distribution `rho`, sampling policy `mu`
    /// (flat X x Y) and true reward `r_star` (flat X x Y).
    pub fn new(rho: &[f64], mu: &[f64], r_star: &[f64], responses: usize) -> Self {
        let nx = rho.len();
        let ny = responses;
        let pairs = pairs(ny);
        let mut cell_conditional = Vec::with_capacity(nx * (pairs.len() + 1));
        let mut win_probability = Vec::with_capacity(nx * pairs.len());
        let mut cells = Vec::with_capacity(pairs.len() + 1);
        let mut mu_cdf = Vec::with_capacity(nx * ny);
        for x in 0..nx {
            let m = &mu[x * ny..(x + 1) * ny];
            let r = &r_star[x * ny..(x + 1) * ny];
            cells.clear();
            for &(a, b) in &pairs {
                cells.push(2.0 * m[a] * m[b]);
                win_probability.push(sigmoid(r[a] - r[b]));
            }
            cells.push(m.iter().map(|v| v * v).sum());
            cell_conditional.extend(conditionals(&cells));
            mu_cdf.extend(cdf(m));
        }
        Sampler {
            contexts: nx,
            responses: ny,
            pairs,
            context_conditional: conditionals(rho),
            cell_conditional,
            win_probability,
            rho_cdf: cdf(rho),
            mu_cdf,
            reward: r_star.to_vec(),
        }
    }

    /// Adds `extra` comparisons drawn with the chosen scheme.
    pub fn extend<R: Rng + ?Sized>(
        &self,
        kind: SamplerKind,
        counts: &mut WinCounts,
        extra: u64,
        rng: &mut R,
    ) {
        match kind {
            SamplerKind::Counts => self.extend_counts(counts, extra, rng),
            SamplerKind::PerSample => self.extend_per_sample(counts, extra, rng),
            SamplerKind::FixedDesign => {
                unreachable!("a fixed design grows through fixed_design::Schedule::grow")
            }
        }
    }

    /// Adds `extra` comparisons, drawn exactly in distribution as multinomial cell counts:
    /// n_x ~ Binomial(remaining, rho_x / sum_{x' >= x} rho_x'), then within x the same over the
    /// pair cells (probability 2 mu(a) mu(b)) and the tie cell (sum_y mu(y)^2), then
    /// W(a beats b) ~ Binomial(N_ab, sigma(r*(a) - r*(b))). Cost O(|X| |Y|^2), independent of n.
    pub fn extend_counts<R: Rng + ?Sized>(&self, counts: &mut WinCounts, extra: u64, rng: &mut R) {
        let np = self.pairs.len();
        let mut left = extra;
        for x in 0..self.contexts {
            if left == 0 {
                break;
            }
            let mut nx = binomial(rng, left, self.context_conditional[x]);
            left -= nx;
            let cond = &self.cell_conditional[x * (np + 1)..(x + 1) * (np + 1)];
            let win = &self.win_probability[x * np..(x + 1) * np];
            // The draws of cell p + 1's count and of cell p's wins both depend only on cell
            // p's count: both are prepared before either is sampled, so that their setups
            // overlap in the processor. The words are drawn in the order of the formula above.
            let mut cell = Draw::new(nx, cond[0]);
            for p in 0..np {
                if nx == 0 {
                    break;
                }
                let c = cell.sample(rng);
                nx -= c;
                let wins = Draw::new(c, win[p]);
                if p + 1 < np {
                    cell = Draw::new(nx, cond[p + 1]);
                }
                if c > 0 {
                    let a_wins = wins.sample(rng);
                    let w = &mut counts.wins[x * np + p];
                    w[0] += a_wins;
                    w[1] += c - a_wins;
                }
            }
            counts.ties += nx;
        }
        counts.n += extra;
    }

    /// Adds `extra` comparisons drawn one at a time: x ~ rho, y, y' ~ mu(.|x) independently,
    /// y preferred with probability sigma(r*(x,y) - r*(x,y')). Cost O(n log |Y|), no allocation.
    pub fn extend_per_sample<R: Rng + ?Sized>(
        &self,
        counts: &mut WinCounts,
        extra: u64,
        rng: &mut R,
    ) {
        let ny = self.responses;
        let np = self.pairs.len();
        for _ in 0..extra {
            let x = draw(&self.rho_cdf, rng.random::<f64>());
            let cdf = &self.mu_cdf[x * ny..(x + 1) * ny];
            let y = draw(cdf, rng.random::<f64>());
            let y2 = draw(cdf, rng.random::<f64>());
            let u: f64 = rng.random();
            if y == y2 {
                counts.ties += 1;
                continue;
            }
            let r = &self.reward[x * ny..(x + 1) * ny];
            let y_wins = u < sigmoid(r[y] - r[y2]);
            let (a, b) = if y < y2 { (y, y2) } else { (y2, y) };
            // index of pair (a, b) in the row-major enumeration of a < b
            let p = a * (2 * ny - a - 1) / 2 + (b - a - 1);
            let a_won = (y == a) == y_wins;
            counts.wins[x * np + p][if a_won { 0 } else { 1 }] += 1;
        }
        counts.n += extra;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pair_index_formula_matches_enumeration() {
        for ny in 1..7 {
            for (p, &(a, b)) in pairs(ny).iter().enumerate() {
                assert_eq!(a * (2 * ny - a - 1) / 2 + (b - a - 1), p);
            }
        }
    }

    #[test]
    fn conditionals_end_in_one_and_reproduce_the_probabilities() {
        let p = [0.1, 0.0, 0.6, 0.3];
        let c = conditionals(&p);
        assert_eq!(c[3], 1.0);
        let mut left = 1.0;
        for j in 0..4 {
            assert!((left * c[j] - p[j]).abs() < 1e-15);
            left *= 1.0 - c[j];
        }
    }

    #[test]
    fn both_samplers_count_every_draw() {
        let rho = [0.3, 0.7];
        let mu = [0.5, 0.5, 0.0, 0.2, 0.3, 0.5];
        let r = [1.0, 0.0, -1.0, 0.5, 0.5, 0.0];
        let s = Sampler::new(&rho, &mu, &r, 3);
        for kind in [SamplerKind::Counts, SamplerKind::PerSample] {
            let mut w = WinCounts::new(2, 3);
            let mut rng = crate::streams::stream(3, "t", 0);
            s.extend(kind, &mut w, 5000, &mut rng);
            s.extend(kind, &mut w, 0, &mut rng);
            s.extend(kind, &mut w, 1234, &mut rng);
            let total: u64 = w.wins.iter().map(|c| c[0] + c[1]).sum::<u64>() + w.ties;
            assert_eq!(total, 6234);
            assert_eq!(w.n, 6234);
            // mu(2|0) = 0: no comparison involving response 2 at context 0.
            assert_eq!(w.wins[1], [0, 0]);
            assert_eq!(w.wins[2], [0, 0]);
        }
    }

    /// The count sampler as the formula reads, one draw after the other (what
    /// `extend_counts` was before it prepared two draws at once).
    fn counts_one_draw_at_a_time<R: Rng + ?Sized>(
        s: &Sampler,
        counts: &mut WinCounts,
        extra: u64,
        rng: &mut R,
    ) {
        let np = s.pairs.len();
        let mut left = extra;
        for x in 0..s.contexts {
            if left == 0 {
                break;
            }
            let mut nx = binomial(rng, left, s.context_conditional[x]);
            left -= nx;
            for p in 0..np {
                if nx == 0 {
                    break;
                }
                let c = binomial(rng, nx, s.cell_conditional[x * (np + 1) + p]);
                nx -= c;
                if c > 0 {
                    let a_wins = binomial(rng, c, s.win_probability[x * np + p]);
                    counts.wins[x * np + p][0] += a_wins;
                    counts.wins[x * np + p][1] += c - a_wins;
                }
            }
            counts.ties += nx;
        }
        counts.n += extra;
    }

    /// Preparing the next cell's draw with this cell's wins changes no count and no word of
    /// the stream: the same counts and the same next word as one draw at a time, from n = 1
    /// (most cells empty) to 1e12 (every draw BTPE), with responses of probability 0 and
    /// rewards that make some win probabilities 0.5 and some near 0 or 1.
    #[test]
    fn prepared_draws_give_the_counts_of_one_draw_at_a_time() {
        let rho = [0.2, 0.5, 0.3];
        let mu = [
            0.4, 0.3, 0.0, 0.2, 0.1, 0.2, 0.2, 0.2, 0.2, 0.2, 0.0, 0.0, 0.5, 0.5, 0.0,
        ];
        let r = [
            1.0, 0.0, -1.0, 30.0, 0.5, 0.0, 0.0, 0.0, 0.0, 0.0, -40.0, 2.0, 0.1, 0.2, 0.3,
        ];
        let s = Sampler::new(&rho, &mu, &r, 5);
        for (i, n) in [1u64, 7, 100, 10_000, 1_000_000, 1_000_000_000_000]
            .into_iter()
            .enumerate()
        {
            let (mut a, mut b) = (WinCounts::new(3, 5), WinCounts::new(3, 5));
            let mut ra = crate::streams::stream(21, "t", i as u64);
            let mut rb = crate::streams::stream(21, "t", i as u64);
            s.extend_counts(&mut a, n, &mut ra);
            counts_one_draw_at_a_time(&s, &mut b, n, &mut rb);
            assert_eq!((&a.wins, a.ties, a.n), (&b.wins, b.ties, b.n), "n = {n}");
            assert_eq!(ra.next_u64(), rb.next_u64(), "stream after n = {n}");
        }
    }
}
